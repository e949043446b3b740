"""Countdown-4 problems: a seeded generator, the prompt format, and its parser.

The prompt format is a contract shared by the trainer, the bench and the search code,
so it lives here once: `countdown target=T numbers=a,b,c,d`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from rewards.countdown.solver import reachable_values

NUM_NUMBERS = 4
MIN_NUMBER, MAX_NUMBER = 1, 99
MIN_TARGET, MAX_TARGET = 10, 100
DEV_SEED = 1234
"""Seed of the held-out dev set; training data must use other seeds."""

_PROMPT_RE = re.compile(r"countdown target=(\d+) numbers=(\d+(?:,\d+)*)")


@dataclass(frozen=True)
class Problem:
    """Reach `target` by combining every one of `numbers` exactly once."""

    numbers: tuple[int, ...]
    target: int


def format_prompt(problem: Problem) -> str:
    """The user message for a problem, e.g. `countdown target=93 numbers=4,7,25,50`."""
    numbers = ",".join(str(n) for n in problem.numbers)
    return f"countdown target={problem.target} numbers={numbers}"


def parse_prompt(message: str) -> Problem:
    """Inverse of `format_prompt`; raises ValueError on anything else."""
    match = _PROMPT_RE.fullmatch(message.strip())
    if match is None:
        raise ValueError(f"not a countdown prompt: {message!r}")
    numbers = tuple(int(n) for n in match.group(2).split(","))
    return Problem(numbers=numbers, target=int(match.group(1)))


def reachable_targets(numbers: tuple[int, ...]) -> list[int]:
    """Targets in the allowed range that use all of `numbers`, sorted for determinism."""
    values = reachable_values(tuple(sorted(numbers)))
    return sorted(v for v in values if MIN_TARGET <= v <= MAX_TARGET)


def sample_problem(rng: random.Random) -> Problem:
    """Draw numbers uniformly, then a target uniformly among the reachable ones."""
    while True:
        numbers = tuple(rng.randint(MIN_NUMBER, MAX_NUMBER) for _ in range(NUM_NUMBERS))
        targets = reachable_targets(numbers)
        if targets:
            return Problem(numbers=numbers, target=rng.choice(targets))


def generate_problems(seed: int, num_problems: int) -> list[Problem]:
    """`num_problems` problems, identical for identical seeds."""
    rng = random.Random(seed)
    return [sample_problem(rng) for _ in range(num_problems)]


def dev_problems(num_problems: int) -> list[Problem]:
    """The first `num_problems` of the held-out dev set."""
    return generate_problems(DEV_SEED, num_problems)
