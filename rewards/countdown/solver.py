"""Exhaustive Countdown solver: reachability with memoisation and every winning route.

A state is the tuple of numbers still left. A step takes two of them, puts the larger
first, and appends the result to the others kept in their previous order; every
intermediate result must be a positive integer (division only when exact).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

OPERATORS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Step:
    """One move: `left op right = result`, leaving `remaining` (result appended last)."""

    left: int
    op: str
    right: int
    result: int
    remaining: tuple[int, ...]


@dataclass(frozen=True)
class Route:
    """A winning sequence of steps and the fully parenthesised expression it builds."""

    steps: tuple[Step, ...]
    expression: str


def apply_operator(left: int, op: str, right: int) -> int | None:
    """The result if it is a positive integer, else None (the rules forbid it)."""
    if op == "+":
        return left + right
    if op == "*":
        return left * right
    if op == "-":
        return left - right if left > right else None
    if op == "/":
        return left // right if right > 0 and left % right == 0 else None
    raise ValueError(f"unknown operator {op!r}; valid: {', '.join(OPERATORS)}")


def successors(numbers: tuple[int, ...]) -> Iterator[tuple[Step, int, int]]:
    """Every legal step from `numbers`, with the indices of its larger and smaller operand."""
    for i in range(len(numbers)):
        for j in range(i + 1, len(numbers)):
            big, small = (i, j) if numbers[i] >= numbers[j] else (j, i)
            rest = tuple(n for k, n in enumerate(numbers) if k not in (i, j))
            for op in OPERATORS:
                result = apply_operator(numbers[big], op, numbers[small])
                if result is not None:
                    step = Step(numbers[big], op, numbers[small], result, rest + (result,))
                    yield step, big, small


@lru_cache(maxsize=1 << 18)
def reachable_values(sorted_numbers: tuple[int, ...]) -> frozenset[int]:
    """Every value reachable using all numbers; keyed on the sorted tuple so order is shared."""
    if len(sorted_numbers) == 1:
        return frozenset(sorted_numbers)
    values: set[int] = set()
    for step, _, _ in successors(sorted_numbers):
        values |= reachable_values(tuple(sorted(step.remaining)))
    return frozenset(values)


def is_reachable(numbers: tuple[int, ...] | list[int], target: int) -> bool:
    """Can `target` be made from all of `numbers`?"""
    if not numbers:
        return False
    return target in reachable_values(tuple(sorted(numbers)))


def _routes(numbers: tuple[int, ...], exprs: tuple[str, ...], target: int) -> Iterator[Route]:
    """Depth-first enumeration, pruned by reachability so only winning branches are walked."""
    if len(numbers) == 1:
        if numbers[0] == target:
            yield Route(steps=(), expression=exprs[0])
        return
    for step, big, small in successors(numbers):
        if not is_reachable(step.remaining, target):
            continue
        rest = tuple(e for k, e in enumerate(exprs) if k not in (big, small))
        expr = f"({exprs[big]}{step.op}{exprs[small]})"
        for tail in _routes(step.remaining, rest + (expr,), target):
            yield Route(steps=(step,) + tail.steps, expression=tail.expression)


def solve_routes(numbers: tuple[int, ...], target: int) -> list[Route]:
    """All distinct winning routes, deduplicated by their step sequence."""
    unique: dict[tuple[Step, ...], Route] = {}
    for route in _routes(tuple(numbers), tuple(str(n) for n in numbers), target):
        unique.setdefault(route.steps, route)
    return list(unique.values())
