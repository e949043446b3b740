"""Pure arithmetic of the speed bench: the raw decode curve, per-search counters and their summary.

Kept free of torch and the engine so the numbers the bench prints are unit-tested on their own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def interpolate_rate(curve: Mapping[int, float], batch: float) -> float:
    """The raw decode rate (tokens/s) at a possibly fractional `batch`, read off `curve`
    ({batch size: tokens/s}) linearly in log2(batch size), since the sizes measured double.
    Outside the measured sizes it holds the nearest end: the curve is not extrapolated."""
    if not curve:
        raise ValueError("the raw decode curve is empty")
    if batch <= 0:
        raise ValueError(f"batch must be > 0, got {batch}")
    sizes = sorted(curve)
    if batch <= sizes[0]:
        return curve[sizes[0]]
    if batch >= sizes[-1]:
        return curve[sizes[-1]]
    for low, high in zip(sizes, sizes[1:], strict=False):
        if low <= batch <= high:
            weight = (math.log2(batch) - math.log2(low)) / (math.log2(high) - math.log2(low))
            return curve[low] + weight * (curve[high] - curve[low])
    raise AssertionError("unreachable: batch lies between the measured sizes")


@dataclass(frozen=True)
class ForwardCounts:
    """What the policy's forward passes did: decode steps (one new token a row) and prefills."""

    decode_steps: int = 0
    decode_rows: int = 0
    """Rows summed over decode steps: the tokens the steps computed."""
    decode_s: float = 0.0
    prefill_calls: int = 0
    prefill_tokens: int = 0
    prefill_s: float = 0.0

    def __add__(self, other: ForwardCounts) -> ForwardCounts:
        return self._combine(other, 1)

    def __sub__(self, other: ForwardCounts) -> ForwardCounts:
        return self._combine(other, -1)

    def _combine(self, other: ForwardCounts, sign: int) -> ForwardCounts:
        return ForwardCounts(
            self.decode_steps + sign * other.decode_steps,
            self.decode_rows + sign * other.decode_rows,
            self.decode_s + sign * other.decode_s,
            self.prefill_calls + sign * other.prefill_calls,
            self.prefill_tokens + sign * other.prefill_tokens,
            self.prefill_s + sign * other.prefill_s,
        )

    @property
    def decode_tokens_per_s(self) -> float:
        """The decode steps' own rate: rows computed per second inside the forward passes."""
        return self.decode_rows / self.decode_s if self.decode_s > 0 else 0.0

    @property
    def mean_batch(self) -> float:
        """Rows per decode step: the live batch the engine decoded, weighted per step."""
        return self.decode_rows / self.decode_steps if self.decode_steps else 0.0


@dataclass(frozen=True)
class SearchRun:
    """One search on one problem."""

    wall_s: float
    tokens: int
    prm_s: float
    forward: ForwardCounts
    load: float
    """The 1-minute load average when it ended: the machine is shared."""


@dataclass(frozen=True)
class SpeedRow:
    """One strategy at one budget over all problems, set against the raw decode curve."""

    strategy: str
    budget_tokens: int
    num_problems: int
    median_s: float
    tokens_per_s: float
    mean_batch: float
    raw_tokens_per_s: float
    ratio_to_raw: float
    forward_tokens_per_s: float
    """Rows per second inside the search's decode forward passes: against the raw rate it tells
    slower forward passes (padding, longer contexts) from time lost outside them."""
    decode_share: float
    prefill_share: float
    prm_share: float
    mean_load: float


def summarize(strategy: str, budget: int, runs: Sequence[SearchRun], curve: Mapping[int, float]) -> SpeedRow:
    """Median wall time per problem, tokens/s over the whole cell, the mean live batch, the
    raw rate at that batch, and the share of wall time in decode, prefill and PRM calls (what
    is left is the engine's and the strategy's Python, and waiting)."""
    if not runs:
        raise ValueError("no searches to summarize")
    wall = sum(r.wall_s for r in runs)
    tokens = sum(r.tokens for r in runs)
    forward = sum((r.forward for r in runs), ForwardCounts())
    rate = tokens / wall if wall > 0 else 0.0
    raw = interpolate_rate(curve, forward.mean_batch) if forward.decode_steps else 0.0
    return SpeedRow(
        strategy=strategy,
        budget_tokens=budget,
        num_problems=len(runs),
        median_s=statistics.median(r.wall_s for r in runs),
        tokens_per_s=rate,
        mean_batch=forward.mean_batch,
        raw_tokens_per_s=raw,
        ratio_to_raw=rate / raw if raw > 0 else 0.0,
        forward_tokens_per_s=forward.decode_tokens_per_s,
        decode_share=forward.decode_s / wall if wall > 0 else 0.0,
        prefill_share=forward.prefill_s / wall if wall > 0 else 0.0,
        prm_share=sum(r.prm_s for r in runs) / wall if wall > 0 else 0.0,
        mean_load=statistics.fmean(r.load for r in runs),
    )
