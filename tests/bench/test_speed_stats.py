"""`bench.speed_stats`: reading the raw decode curve at a search's live batch, and a cell's summary."""

from __future__ import annotations

import pytest

from bench.speed_stats import ForwardCounts, SearchRun, interpolate_rate, summarize

CURVE = {1: 100.0, 2: 180.0, 4: 300.0, 8: 420.0}


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (1, 100.0),
        (4, 300.0),
        (3, 180.0 + (300.0 - 180.0) * 0.5849625007211562),  # log2(3) - 1 of the way from 2 to 4
        (2 * 2**0.5, 240.0),  # halfway between 2 and 4 in log2
        (0.5, 100.0),  # below the curve: its first point, never extrapolated
        (64, 420.0),  # above: its last point
    ],
)
def test_interpolate_rate_is_linear_in_log2_batch(batch: float, expected: float) -> None:
    assert interpolate_rate(CURVE, batch) == pytest.approx(expected)


@pytest.mark.parametrize(("curve", "batch", "match"), [({}, 1.0, "empty"), (CURVE, 0.0, "batch must be")])
def test_interpolate_rate_refuses_what_it_cannot_read(
    curve: dict[int, float], batch: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        interpolate_rate(curve, batch)


def test_forward_counts_difference_and_mean_batch() -> None:
    before = ForwardCounts(decode_steps=2, decode_rows=3, decode_s=1.0, prefill_calls=1, prefill_tokens=10)
    after = ForwardCounts(decode_steps=6, decode_rows=19, decode_s=3.0, prefill_calls=2, prefill_tokens=30)
    delta = after - before
    assert (delta.decode_steps, delta.decode_rows, delta.prefill_tokens) == (4, 16, 20)
    assert delta.mean_batch == 4.0
    assert ForwardCounts().mean_batch == 0.0


def test_summarize_sets_the_cell_against_the_raw_rate_at_its_live_batch() -> None:
    runs = [
        SearchRun(2.0, 300, 0.5, ForwardCounts(decode_steps=50, decode_rows=200, decode_s=1.0), 1.0),
        SearchRun(4.0, 300, 0.5, ForwardCounts(decode_steps=25, decode_rows=100, decode_s=2.0), 3.0),
        SearchRun(3.0, 300, 0.5, ForwardCounts(prefill_calls=3, prefill_tokens=90, prefill_s=0.9), 2.0),
    ]
    row = summarize("beam", 1024, runs, CURVE)
    assert row.median_s == 3.0
    assert row.tokens_per_s == pytest.approx(900 / 9.0)
    assert row.mean_batch == 4.0  # 300 rows over 75 steps
    assert row.raw_tokens_per_s == 300.0
    assert row.ratio_to_raw == pytest.approx(100.0 / 300.0)
    assert row.forward_tokens_per_s == 100.0  # 300 rows in 3 s of decode steps
    assert (row.decode_share, row.prefill_share, row.prm_share) == pytest.approx((3 / 9, 0.1, 1.5 / 9))
    assert row.mean_load == 2.0
