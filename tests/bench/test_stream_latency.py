"""The stream latency bench's arithmetic: percentiles and a strategy's summary of its streams."""

from __future__ import annotations

import pytest

from bench.stream_latency import StreamTiming, percentile, summarise


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([0.4], 99, 0.4), ([0.1, 0.2, 0.3], 50, 0.2), ([0.1] * 99 + [5.0], 100, 5.0)],
)
def test_percentile(values: list[float], q: int, expected: float | None) -> None:
    assert percentile(values, q) == (None if expected is None else pytest.approx(expected))


def test_summary_pools_every_gap_of_every_stream_and_skips_missing_firsts() -> None:
    timings = [
        StreamTiming("beam", "p1", first=0.01, first_event=0.5, answer=2.0, gaps=[0.01, 0.3, 0.3]),
        StreamTiming("beam", "p2", first=0.03, first_event=None, answer=3.0, gaps=[0.02, 0.31]),
    ]
    summary = summarise("beam", timings)
    assert summary["num_streams"] == 2 and summary["gap_max_s"] == 0.31
    assert summary["first_p50_s"] == pytest.approx(0.02) and summary["first_event_p50_s"] == 0.5
    assert summary["first_reasoning_p50_s"] is None and summary["answer_p50_s"] == pytest.approx(2.5)
