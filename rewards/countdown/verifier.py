"""Exact outcome verifier and exact step labeller for Countdown replies.

These are the ground truth for the bench and the outcome reward for search. A step is
correct when its arithmetic is right, it uses numbers that are still available, the
numbers it says are left match, and the target is still reachable from what is left.
Once a step is wrong the state is undefined, so every later step is labelled wrong too;
the answer line is the last step and is correct iff it verifies.
"""

from __future__ import annotations

from collections import Counter

from rewards.countdown.expression import evaluate
from rewards.countdown.problems import Problem
from rewards.countdown.solver import apply_operator, is_reachable
from rewards.countdown.steps import ANSWER_PREFIX, parse_step, split_reply


def verify_answer_line(problem: Problem, line: str) -> bool:
    """True iff `answer: EXPR` uses each given number exactly once and equals the target."""
    if not line.startswith(ANSWER_PREFIX):
        return False
    try:
        evaluation = evaluate(line[len(ANSWER_PREFIX) :])
    except ValueError:
        return False
    same_numbers = Counter(evaluation.leaves) == Counter(problem.numbers)
    return same_numbers and evaluation.value == problem.target


def verify_reply(problem: Problem, reply: str) -> bool:
    """Outcome reward: the reply ends in an answer line that verifies."""
    parts = split_reply(reply)
    if parts.answer_line is None:
        return False
    lines = [line for line in reply.strip("\n").split("\n") if line.strip()]
    return lines[-1] == parts.answer_line and verify_answer_line(problem, parts.answer_line)


def next_numbers(numbers: list[int], line: str) -> list[int] | None:
    """The numbers left after a step that is right by itself (parses, its arithmetic holds,
    its operands are available, the numbers it says are left match), else None."""
    try:
        step = parse_step(line)
    except ValueError:
        return None
    if apply_operator(step.left, step.op, step.right) != step.result:
        return None
    left = list(numbers)
    for operand in (step.left, step.right):
        if operand not in left:
            return None
        left.remove(operand)
    left.append(step.result)
    return left if Counter(left) == Counter(step.remaining) else None


def apply_step_line(numbers: list[int], target: int, line: str) -> list[int] | None:
    """The numbers left after a correct step, or None if the step is wrong in any way."""
    left = next_numbers(numbers, line)
    return left if left is not None and is_reachable(left, target) else None


def label_steps(problem: Problem, reply: str) -> list[bool]:
    """Per-step correctness, the answer line (if any) being the last step."""
    parts = split_reply(reply)
    labels: list[bool] = []
    numbers: list[int] | None = list(problem.numbers)
    for line in parts.step_lines:
        numbers = None if numbers is None else apply_step_line(numbers, problem.target, line)
        labels.append(numbers is not None)
    if parts.answer_line is not None:
        labels.append(verify_answer_line(problem, parts.answer_line))
    return labels


NEUTRAL = 0.5
"""Grade of a step that is right but leaves the target unreachable (PRM800K's neutral)."""


def grade_steps(problem: Problem, reply: str) -> list[float]:
    """PRM800K-style ternary grades: 1 for a right step from which the target is still
    reachable, `NEUTRAL` for a right step on a dead end, 0 for a wrong step and every step
    after it; the answer line is 1 iff it verifies.

    Unlike `label_steps`, a dead end does not hide the steps after it: those are still
    graded right or wrong, so a PRM learns to check arithmetic and bookkeeping on every step
    (46% of the policy's first steps at T=0.3 are wrong, not merely unlucky)."""
    parts = split_reply(reply)
    grades: list[float] = []
    numbers: list[int] | None = list(problem.numbers)
    reachable = True
    for line in parts.step_lines:
        numbers = None if numbers is None else next_numbers(numbers, line)
        reachable = reachable and numbers is not None and is_reachable(numbers, problem.target)
        grades.append(0.0 if numbers is None else 1.0 if reachable else NEUTRAL)
    if parts.answer_line is not None:
        grades.append(float(verify_answer_line(problem, parts.answer_line)))
    return grades


def first_error_index(labels: list[bool]) -> int | None:
    """Index of the first wrong step (ProcessBench's target), or None if all are right."""
    return next((i for i, ok in enumerate(labels) if not ok), None)
