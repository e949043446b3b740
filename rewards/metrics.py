"""Evaluation metrics over rewards: unbiased pass@k from outcome checks, and how well PRM
step scores agree with exact step labels (step F1, ProcessBench first-error accuracy).

Pure functions, kept apart from generation so they are tested on hand-made inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from math import comb

from rewards.aggregation import aggregate

THRESHOLD = 0.5
"""A step is predicted correct when its PRM score is at least this."""


def pass_at_k(num_samples: int, num_correct: int, k: int) -> float:
    """Chen et al. (2021): 1 - C(n - c, k) / C(n, k), the chance k of the n draws hold a success."""
    if k > num_samples:
        raise ValueError(f"k={k} exceeds the {num_samples} samples")
    if num_samples - num_correct < k:
        return 1.0
    return 1.0 - comb(num_samples - num_correct, k) / comb(num_samples, k)


def f1(true_positive: int, false_positive: int, false_negative: int) -> float:
    """Harmonic mean of precision and recall (0 when undefined)."""
    denominator = 2 * true_positive + false_positive + false_negative
    return 2 * true_positive / denominator if denominator else 0.0


def harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b else 0.0


@dataclass(frozen=True)
class PrmQuality:
    """Step-level and first-error agreement of PRM scores with exact labels."""

    num_replies: int
    num_steps: int
    step_accuracy: float
    step_f1_error_class: float
    step_f1_correct_class: float
    first_error_acc_erroneous: float
    first_error_acc_correct: float
    first_error_f1: float
    num_erroneous_replies: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def first_below(scores: list[float]) -> int | None:
    """Predicted first error: the first step scored below THRESHOLD."""
    return next((i for i, s in enumerate(scores) if s < THRESHOLD), None)


def first_false(labels: list[bool]) -> int | None:
    return next((i for i, ok in enumerate(labels) if not ok), None)


def prm_quality(scores: list[list[float]], labels: list[list[bool]]) -> PrmQuality:
    """Compare per-step scores with exact labels (same shapes)."""
    pairs = [
        (s >= THRESHOLD, ok)
        for ss, ls in zip(scores, labels, strict=True)
        for s, ok in zip(ss, ls, strict=True)
    ]
    tp_err = sum(not pred and not ok for pred, ok in pairs)
    tp_ok = sum(pred and ok for pred, ok in pairs)
    fp_err = sum(not pred and ok for pred, ok in pairs)  # predicted error, step was right
    fn_err = sum(pred and not ok for pred, ok in pairs)  # missed error
    truths = [first_false(ls) for ls in labels]
    predictions = [first_below(ss) for ss in scores]
    erroneous = [(t, p) for t, p in zip(truths, predictions, strict=True) if t is not None]
    correct = [p for t, p in zip(truths, predictions, strict=True) if t is None]
    acc_err = sum(t == p for t, p in erroneous) / len(erroneous) if erroneous else 0.0
    acc_ok = sum(p is None for p in correct) / len(correct) if correct else 0.0
    return PrmQuality(
        num_replies=len(labels),
        num_steps=len(pairs),
        step_accuracy=(tp_err + tp_ok) / len(pairs) if pairs else 0.0,
        step_f1_error_class=f1(tp_err, fp_err, fn_err),
        step_f1_correct_class=f1(tp_ok, fn_err, fp_err),
        first_error_acc_erroneous=acc_err,
        first_error_acc_correct=acc_ok,
        first_error_f1=harmonic_mean(acc_err, acc_ok),
        num_erroneous_replies=len(erroneous),
    )


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive outscores a random negative), ties counting half: ranking quality
    independent of any threshold (what search, which only compares scores, relies on)."""
    if not positives or not negatives:
        return 0.0
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def best_of_k_accuracy(
    scores: Sequence[Sequence[list[float]]], correct: Sequence[Sequence[bool]], k: int, how: str = "min"
) -> float:
    """Share of problems whose top-scored reply among their first `k` is correct: best-of-k
    reranking by the PRM, to set against pass@1 (no reranking) and pass@k (a perfect one)."""
    hits = 0
    for replies, oks in zip(scores, correct, strict=True):
        values = [aggregate(s, how) if s else 0.0 for s in replies[:k]]
        hits += bool(values) and oks[max(range(len(values)), key=values.__getitem__)]
    return hits / len(scores) if scores else 0.0
