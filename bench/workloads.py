"""The problem sets the strategy bench runs, by task: the user messages and the grader of each.

A task names how replies split into steps and which answers agree (rewards.tasks); a workload
adds seeded problems with known answers, a held-out dev seed and the search knobs its replies
need, so `./run bench strategies --task math` measures the same strategies on another model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rewards import math_problems
from rewards.countdown import problems as countdown_problems
from rewards.tasks import get_task
from trainer.evaluate import Check

ALL_STRATEGIES = ()
"""A workload's default strategies when it names none: every registered strategy."""


@dataclass(frozen=True)
class Workload:
    """Seeded problems for one task, and how the bench searches them."""

    title: str
    dev_seed: int
    problems: Callable[[int, int], tuple[list[str], Check]]
    """(seed, count) -> the user messages and the grader (never shown to the search)."""
    strategies: tuple[str, ...] = ALL_STRATEGIES
    search: dict[str, object] = field(default_factory=dict)
    """Knobs every search of this workload sets, as a request's `search` field would."""


def countdown_set(seed: int, num_problems: int) -> tuple[list[str], Check]:
    """Countdown-4 problems, graded by the task's own exact verifier."""
    problems = countdown_problems.generate_problems(seed, num_problems)
    return [countdown_problems.format_prompt(p) for p in problems], get_task("countdown").verify


def math_set(seed: int, num_problems: int) -> tuple[list[str], Check]:
    """Arithmetic word problems, graded against their gold answers by math-verify."""
    problems = math_problems.generate_problems(seed, num_problems)
    return [math_problems.format_prompt(p) for p in problems], math_problems.answer_check(problems)


MATH_STEP_TOKENS = 128
"""A chat model's reasoning paragraph runs past the default 48-token step (SmolLM2's run 20-80
tokens), and a step cut by length ends its reply; 128 is the server's limit for the knob."""

WORKLOADS: dict[str, Workload] = {
    "countdown": Workload("Countdown", countdown_problems.DEV_SEED, countdown_set),
    "math": Workload(
        "Arithmetic word problems",
        math_problems.DEV_SEED,
        math_set,
        strategies=("greedy", "self_consistency", "best_of_n", "beam"),
        search={"max_step_tokens": MATH_STEP_TOKENS},
    ),
}


def get_workload(task: str) -> Workload:
    """The problem set of `task`; ValueError listing the tasks that have one."""
    if task not in WORKLOADS:
        raise ValueError(f"task {task!r} has no problem set; valid: {', '.join(sorted(WORKLOADS))}")
    return WORKLOADS[task]
