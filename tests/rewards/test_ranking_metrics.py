"""Threshold-free PRM metrics on hand-made scores: AUROC and best-of-k reranking."""

from __future__ import annotations

import pytest

from rewards.metrics import auroc, best_of_k_accuracy


@pytest.mark.parametrize(
    ("positives", "negatives", "expected"),
    [
        ([0.9, 0.8], [0.1, 0.2], 1.0),  # perfectly separated
        ([0.1, 0.2], [0.9, 0.8], 0.0),  # perfectly inverted
        ([0.5], [0.5], 0.5),  # a tie counts half
        ([0.3, 0.7], [0.5], 0.5),  # one pair won, one lost
        ([0.6, 0.6, 0.2], [0.6, 0.1], 4 / 6),  # two ties, three wins, one loss
    ],
)
def test_auroc_counts_ordered_pairs(positives: list[float], negatives: list[float], expected: float) -> None:
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives) / (
        len(positives) * len(negatives)
    )
    assert auroc(positives, negatives) == pytest.approx(brute)
    assert auroc(positives, negatives) == pytest.approx(expected)


def test_auroc_without_one_class_is_zero() -> None:
    assert auroc([0.4], []) == 0.0


def test_best_of_k_picks_the_top_aggregated_reply_among_the_first_k() -> None:
    scores = [
        [[0.9, 0.2], [0.5, 0.6], [0.99, 0.99]],  # min picks sample 1; sample 2 is beyond k=2
        [[0.1], []],  # an unscored reply counts as 0: sample 0 wins
    ]
    correct = [[False, True, False], [False, True]]
    assert best_of_k_accuracy(scores, correct, k=2, how="min") == 0.5
    assert best_of_k_accuracy(scores, correct, k=2, how="last") == 0.5  # 0.6 beats 0.2
    assert best_of_k_accuracy(scores, correct, k=3, how="min") == 0.0  # sample 2 now wins, wrong
    assert best_of_k_accuracy(scores, [[True, False, False], [False, True]], k=2, how="product") == 0.0
