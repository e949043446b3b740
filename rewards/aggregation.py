"""Turn per-step PRM scores into one score for a whole (partial) solution.

Scoring and aggregation are separate so any PRM can be combined with any rule, chosen by
name: `min` (weakest step, the usual best-of-N choice), `last` (the PRM's view of the whole
prefix), `product` (probability that every step is right), `mean`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def _product(scores: Sequence[float]) -> float:
    return math.prod(scores)


def _mean(scores: Sequence[float]) -> float:
    return sum(scores) / len(scores)


AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": min,
    "last": lambda scores: scores[-1],
    "product": _product,
    "mean": _mean,
}


def aggregate(scores: Sequence[float], how: str) -> float:
    """Combine step scores by the rule named `how`; ValueError for an unknown name or no scores."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; valid: {', '.join(sorted(AGGREGATIONS))}")
    if not scores:
        raise ValueError("cannot aggregate an empty list of step scores")
    return float(AGGREGATIONS[how](scores))
