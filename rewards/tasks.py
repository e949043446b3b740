"""Tasks: what a reply to a kind of prompt must be, seen from outside the model.

A task knows how to make problems (for self-play and for a held-out dev split), how to check a
reply exactly (the outcome reward) and, where it can, whether every step of a reply is right. The
learner works through this protocol alone, so a new task with a verifier can be learned from
without touching the trainer. Problems travel as user messages: that is what a trace records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from rewards.countdown.problems import (
    DEV_SEED,
    format_prompt,
    generate_problems,
    parse_prompt,
    sample_problem,
)
from rewards.countdown.verifier import first_error_index, label_steps, verify_reply


class Task(Protocol):
    """A task with an exact verifier (what the learning loop needs)."""

    @property
    def name(self) -> str: ...

    def training_messages(self, seed: int, num_problems: int) -> list[str]:
        """Seeded problems as user messages, never one of the dev split's."""
        ...

    def dev_messages(self, num_problems: int) -> list[str]:
        """The first `num_problems` of the fixed held-out dev split."""
        ...

    def verify(self, message: str, reply: str) -> bool | None:
        """The exact outcome of `reply`; None when `message` states no problem of this task."""
        ...

    def is_sound(self, message: str, reply: str) -> bool:
        """A verified reply whose every step is right too (a right answer after wrong steps
        teaches the wrong steps); tasks that cannot check steps return `verify`'s outcome."""
        ...


@dataclass(frozen=True)
class CountdownTask:
    """Countdown-4: reach the target with each number once (rewards.countdown)."""

    name: str = "countdown"
    num_dev_excluded: int = 1000
    """Training problems never coincide with the first this-many dev problems."""

    def training_messages(self, seed: int, num_problems: int) -> list[str]:
        if seed == DEV_SEED:
            raise ValueError(f"seed {DEV_SEED} is the dev split's; training needs another")
        dev = set(generate_problems(DEV_SEED, self.num_dev_excluded))
        rng = random.Random(seed)
        messages: list[str] = []
        while len(messages) < num_problems:
            problem = sample_problem(rng)
            if problem not in dev:
                messages.append(format_prompt(problem))
        return messages

    def dev_messages(self, num_problems: int) -> list[str]:
        return [format_prompt(p) for p in generate_problems(DEV_SEED, num_problems)]

    def verify(self, message: str, reply: str) -> bool | None:
        try:
            problem = parse_prompt(message)
        except ValueError:
            return None
        return verify_reply(problem, reply)

    def is_sound(self, message: str, reply: str) -> bool:
        if not self.verify(message, reply):
            return False
        return first_error_index(label_steps(parse_prompt(message), reply)) is None


TASKS: dict[str, Task] = {"countdown": CountdownTask()}


def get_task(name: str) -> Task:
    """The task called `name`; ValueError listing the valid names."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]
