"""The exhaustive solver: arithmetic rules, reachability, and winning routes."""

from __future__ import annotations

import pytest

from rewards.countdown.problems import Problem, generate_problems
from rewards.countdown.solver import apply_operator, is_reachable, solve_routes
from rewards.countdown.steps import format_reply
from rewards.countdown.verifier import label_steps, verify_reply


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        (7, "+", 5, 12),
        (7, "-", 5, 2),
        (5, "-", 5, None),
        (5, "-", 7, None),
        (6, "*", 7, 42),
        (42, "/", 6, 7),
        (7, "/", 2, None),
    ],
)
def test_apply_operator_keeps_results_positive_integers(
    left: int, op: str, right: int, expected: int | None
) -> None:
    assert apply_operator(left, op, right) == expected


@pytest.mark.parametrize(
    ("numbers", "target", "expected"),
    [
        ((1, 2, 3, 4), 24, True),
        ((2, 2, 2, 2), 16, True),
        ((3, 3, 3, 3), 10, True),  # 3*3 + 3/3
        ((1, 1, 1, 1), 10, False),
        ((4, 7, 25, 50), 93, True),  # (50-25)*4 - 7
        ((50, 25), 93, False),
        ((), 1, False),
    ],
)
def test_is_reachable(numbers: tuple[int, ...], target: int, expected: bool) -> None:
    assert is_reachable(numbers, target) is expected


@pytest.mark.parametrize("problem", generate_problems(11, 25))
def test_every_route_verifies_and_every_step_is_labelled_correct(problem: Problem) -> None:
    routes = solve_routes(problem.numbers, problem.target)
    assert routes
    assert len({route.steps for route in routes}) == len(routes)
    for route in routes:
        reply = format_reply(route)
        assert len(route.steps) == 3
        assert verify_reply(problem, reply)
        assert label_steps(problem, reply) == [True, True, True, True]


def test_unreachable_target_has_no_routes() -> None:
    assert solve_routes((1, 1, 1, 1), 10) == []
