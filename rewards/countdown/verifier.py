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


def apply_step_line(numbers: list[int], target: int, line: str) -> list[int] | None:
    """The numbers left after a correct step, or None if the step is wrong in any way."""
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
    if Counter(left) != Counter(step.remaining):
        return None
    return left if is_reachable(left, target) else None


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


def first_error_index(labels: list[bool]) -> int | None:
    """Index of the first wrong step (ProcessBench's target), or None if all are right."""
    return next((i for i, ok in enumerate(labels) if not ok), None)
