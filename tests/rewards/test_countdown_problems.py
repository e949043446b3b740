"""The Countdown generator and prompt format."""

from __future__ import annotations

import pytest

from rewards.countdown.problems import (
    DEV_SEED,
    Problem,
    dev_problems,
    format_prompt,
    generate_problems,
    parse_prompt,
)
from rewards.countdown.solver import is_reachable


@pytest.mark.parametrize("seed", [0, 1, DEV_SEED])
def test_generated_problems_follow_the_rules(seed: int) -> None:
    problems = generate_problems(seed, 150)
    for problem in problems:
        assert len(problem.numbers) == 4
        assert all(1 <= n <= 99 for n in problem.numbers)
        assert 10 <= problem.target <= 100
        assert is_reachable(problem.numbers, problem.target)


@pytest.mark.parametrize("seed", [0, 5])
def test_generator_is_deterministic_per_seed(seed: int) -> None:
    assert generate_problems(seed, 30) == generate_problems(seed, 30)
    assert generate_problems(seed, 30) != generate_problems(seed + 1, 30)


def test_targets_and_numbers_are_spread_out() -> None:
    problems = generate_problems(3, 400)
    assert len({p.target for p in problems}) > 60
    assert len({n for p in problems for n in p.numbers}) > 90


def test_dev_problems_come_from_the_dev_seed() -> None:
    assert dev_problems(10) == generate_problems(DEV_SEED, 10)


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (Problem((4, 7, 25, 50), 93), "countdown target=93 numbers=4,7,25,50"),
        (Problem((1, 1, 99, 3), 10), "countdown target=10 numbers=1,1,99,3"),
    ],
)
def test_prompt_round_trip(problem: Problem, text: str) -> None:
    assert format_prompt(problem) == text
    assert parse_prompt(text) == problem


@pytest.mark.parametrize(
    "text",
    [
        "",
        "countdown target=93",
        "countdown numbers=1,2 target=3",
        "countdown target=x numbers=1,2,3,4",
        "hello",
    ],
)
def test_parse_prompt_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_prompt(text)
