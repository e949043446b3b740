"""The statistics of `bench.load`: per request type, latency and time-to-first-token percentiles,
counts and errors by status. Pure functions of the samples, so they are tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ALL_KINDS = "all"
TRANSPORT_ERROR = "transport"  # no HTTP status: a refused or cut connection, a timeout
ERROR_EVENT = "error_event"  # a stream that answered 200 and then sent an error event


@dataclass(frozen=True)
class Sample:
    """One request as its client saw it."""

    kind: str
    started_s: float  # since the load began
    latency_s: float  # until the whole response (or the stream's end) arrived
    status: int | None  # None: the request got no HTTP answer
    ttft_s: float | None = None  # streams: until the first chunk with text
    error: str | None = None  # set for every failed request, with what went wrong

    @property
    def error_key(self) -> str | None:
        """How `errors_by_status` counts this failure; None when the request succeeded."""
        if self.error is None:
            return None
        if self.status is None:
            return TRANSPORT_ERROR
        return ERROR_EVENT if self.status == 200 else str(self.status)


@dataclass(frozen=True)
class KindStats:
    kind: str
    count: int
    num_errors: int
    errors_by_status: dict[str, int] = field(default_factory=dict)
    p50_s: float | None = None
    p99_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None

    @property
    def ttft_spread(self) -> float | None:
        """p99 over p50 of the time to first token: how far the slow tail is from the typical."""
        if not self.ttft_p50_s or self.ttft_p99_s is None:
            return None
        return self.ttft_p99_s / self.ttft_p50_s


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank `q`th percentile (0 < q <= 100): a value that was measured, never an
    interpolation between two; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < q <= 100:
        raise ValueError(f"q must be in (0, 100], got {q}")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def kind_stats(kind: str, samples: Sequence[Sample]) -> KindStats:
    """Latency percentiles over the successful samples; errors counted by `Sample.error_key`."""
    ok = [s for s in samples if s.error is None]
    errors = Counter(key for s in samples if (key := s.error_key) is not None)
    ttfts = [s.ttft_s for s in ok if s.ttft_s is not None]
    return KindStats(
        kind=kind,
        count=len(samples),
        num_errors=sum(errors.values()),
        errors_by_status=dict(sorted(errors.items())),
        p50_s=percentile((s.latency_s for s in ok), 50),
        p99_s=percentile((s.latency_s for s in ok), 99),
        ttft_p50_s=percentile(ttfts, 50),
        ttft_p99_s=percentile(ttfts, 99),
    )


def summarize(samples: Sequence[Sample], kinds: Sequence[str]) -> list[KindStats]:
    """One row per kind, in `kinds` order (a kind with no sample still gets its row), then all."""
    rows = [kind_stats(kind, [s for s in samples if s.kind == kind]) for kind in kinds]
    return [*rows, kind_stats(ALL_KINDS, samples)]


def table_row(stats: KindStats) -> list[object]:
    """`stats` as `bench.report.print_table` cells: seconds to 3 places, '-' where none."""

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    errors = ", ".join(f"{key}: {n}" for key, n in stats.errors_by_status.items()) or "-"
    spread = "-" if stats.ttft_spread is None else f"{stats.ttft_spread:.1f}x"
    return [
        stats.kind,
        stats.count,
        stats.num_errors,
        errors,
        seconds(stats.p50_s),
        seconds(stats.p99_s),
        seconds(stats.ttft_p50_s),
        seconds(stats.ttft_p99_s),
        spread,
    ]


TABLE_HEADERS = (
    "type",
    "count",
    "errors",
    "errors by status",
    "p50 s",
    "p99 s",
    "ttft p50 s",
    "ttft p99 s",
    "ttft p99/p50",
)
