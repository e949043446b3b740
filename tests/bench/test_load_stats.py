"""`bench.load_stats`: percentiles, errors by status and the per-kind rows of the load bench."""

from __future__ import annotations

import pytest

from bench.load_stats import (
    ALL_KINDS,
    ERROR_EVENT,
    TRANSPORT_ERROR,
    Sample,
    kind_stats,
    percentile,
    summarize,
    table_row,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([3.0], 99, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.0),  # nearest rank: ceil(0.5 * 4) = 2nd smallest
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        ([float(v) for v in range(1, 101)], 99, 99.0),
        ([float(v) for v in range(1, 101)], 50, 50.0),
        ([float(v) for v in range(1, 1001)], 99, 990.0),
    ],
)
def test_percentile_is_a_measured_value(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize("q", [0, -1, 101])
def test_percentile_refuses_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], q)


def sample(kind: str, latency: float, status: int | None = 200, **kw: object) -> Sample:
    return Sample(kind, 0.0, latency, status, **kw)  # type: ignore[arg-type]


def test_errors_are_counted_by_status_and_left_out_of_latency() -> None:
    samples = [
        sample("stream", 1.0, ttft_s=0.1),
        sample("stream", 2.0, ttft_s=0.3),
        sample("stream", 50.0, 429, error="too many"),
        sample("stream", 60.0, 429, error="too many"),
        sample("stream", 70.0, None, error="ReadTimeout"),
        sample("stream", 80.0, 200, error="error event: boom"),
    ]
    stats = kind_stats("stream", samples)
    assert (stats.count, stats.num_errors) == (6, 4)
    assert stats.errors_by_status == {"429": 2, ERROR_EVENT: 1, TRANSPORT_ERROR: 1}
    assert (stats.p50_s, stats.p99_s) == (1.0, 2.0)
    assert (stats.ttft_p50_s, stats.ttft_p99_s) == (0.1, 0.3)
    assert stats.ttft_spread == pytest.approx(3.0)


def test_summarize_keeps_kind_order_empty_kinds_and_an_all_row() -> None:
    samples = [sample("plain", 0.5), sample("search", 4.0), sample("plain", 1.5)]
    rows = summarize(samples, ["plain", "stream", "search"])
    assert [r.kind for r in rows] == ["plain", "stream", "search", ALL_KINDS]
    assert [r.count for r in rows] == [2, 0, 1, 3]
    assert rows[1].p50_s is None and rows[1].ttft_spread is None
    assert rows[-1].p99_s == 4.0


def test_table_row_shows_missing_values_as_dashes() -> None:
    row = table_row(kind_stats("plain", [sample("plain", 0.25), sample("plain", 9.0, 503, error="busy")]))
    assert row == ["plain", 2, 1, "503: 1", "0.250", "0.250", "-", "-", "-"]
