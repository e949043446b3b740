"""Learning-rate and batch schedules are pure functions of the step."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.schedule import length_grouped_batches, lr_at


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1e-5), (99, 1e-3), (100, 1e-3), (1100, 5.5e-4), (2100, 1e-4), (5000, 1e-4)],
)
def test_warmup_then_cosine_to_a_tenth(step: int, expected: float) -> None:
    assert lr_at(step, base_lr=1e-3, warmup=100, total=2100, min_ratio=0.1) == pytest.approx(expected)


def test_batches_are_deterministic_full_and_length_grouped() -> None:
    lengths = np.random.default_rng(0).integers(60, 100, size=5000)
    batches = length_grouped_batches(lengths, batch_size=16, num_batches=400, seed=3)
    assert batches.shape == (400, 16)
    assert np.array_equal(batches, length_grouped_batches(lengths, 16, 400, seed=3))
    assert not np.array_equal(batches, length_grouped_batches(lengths, 16, 400, seed=4))
    spread = (lengths[batches].max(1) - lengths[batches].min(1)).mean()
    assert spread < 5  # random batches of 16 would span ~35 tokens


def test_longer_schedule_starts_with_the_shorter_one() -> None:
    lengths = np.arange(100)
    assert np.array_equal(
        length_grouped_batches(lengths, 10, 30, 0)[:12], length_grouped_batches(lengths, 10, 12, 0)
    )


def test_too_few_examples_is_an_error() -> None:
    with pytest.raises(ValueError):
        length_grouped_batches(np.arange(3), batch_size=8, num_batches=1, seed=0)
