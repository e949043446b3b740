"""PRM aggregation, encoding, metrics, and the token-classification scorer on a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaForTokenClassification

from rewards.metrics import pass_at_k, prm_quality
from rewards.prm import TokenClassificationPRM, aggregate, load_prm
from rewards.prm_encoding import StepMarkers, encode_steps
from trainer.policy import ModelShape, policy_config
from trainer.prm import ID2LABEL, step_markers
from trainer.tokenizer import build_tokenizer

PROMPT = "countdown target=93 numbers=4,7,25,50"
STEPS = ["50-25=25 (4,7,25)", "25*4=100 (7,100)", "100-7=93 (93)", "answer: (((50-25)*4)-7)"]


@pytest.mark.parametrize(
    ("how", "expected"),
    [("min", 0.2), ("last", 0.5), ("product", 0.9 * 0.2 * 0.5), ("mean", (0.9 + 0.2 + 0.5) / 3)],
)
def test_aggregate(how: str, expected: float) -> None:
    assert aggregate([0.9, 0.2, 0.5], how) == pytest.approx(expected)


def test_unknown_aggregation_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="last, mean, min, product"):
        aggregate([0.5], "max")


def test_aggregating_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        aggregate([], "min")


def test_step_ends_are_newlines_then_eos() -> None:
    tokenizer = build_tokenizer()
    markers = step_markers(tokenizer)
    encoded = encode_steps(tokenizer, markers, PROMPT, STEPS)
    ends = [encoded.ids[i] for i in encoded.step_ends]
    newline = tokenizer.get_vocab()["\n"]
    assert ends == [newline, newline, newline, tokenizer.eos_token_id]
    text = tokenizer.decode(encoded.ids)
    assert text == "<bos>" + PROMPT + "\n" + "\n".join(STEPS) + "<eos>"
    partial = encode_steps(tokenizer, markers, PROMPT, STEPS[:2])
    assert partial.ids == encoded.ids[: len(partial.ids)]


@pytest.fixture(scope="module")
def tiny_prm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prm")
    tokenizer = build_tokenizer()
    config = policy_config(
        tokenizer, ModelShape(num_layers=1, hidden=32, num_heads=2, mlp=64, max_positions=128)
    )
    config.num_labels, config.id2label = 2, ID2LABEL
    torch.manual_seed(0)
    LlamaForTokenClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    step_markers(tokenizer).save(folder)
    return folder


def test_scores_are_probabilities_one_per_step(tiny_prm_folder: Path) -> None:
    prm = load_prm(tiny_prm_folder)
    scores = prm.score_steps(PROMPT, STEPS)
    assert len(scores) == len(STEPS)
    assert all(0.0 < s < 1.0 for s in scores)
    assert prm.score_steps(PROMPT, []) == []


def test_batched_scores_match_single_scores(tiny_prm_folder: Path) -> None:
    prm = TokenClassificationPRM(tiny_prm_folder, batch_size=2)
    items = [(PROMPT, STEPS), (PROMPT, STEPS[:1]), ("countdown target=10 numbers=1,2,3,4", ["4+3=7 (1,2,7)"])]
    batched = prm.score_batch(items)
    for item, scores in zip(items, batched, strict=True):
        assert scores == pytest.approx(prm.score_steps(*item), abs=1e-5)


def test_prefix_scores_do_not_depend_on_later_steps(tiny_prm_folder: Path) -> None:
    prm = load_prm(tiny_prm_folder)
    assert prm.score_steps(PROMPT, STEPS)[:2] == pytest.approx(prm.score_steps(PROMPT, STEPS[:2]), abs=1e-5)


def test_unknown_prm_style_lists_valid_names(tiny_prm_folder: Path) -> None:
    with pytest.raises(ValueError, match="token-classification"):
        load_prm(tiny_prm_folder, style="qwen")


def test_markers_round_trip(tmp_path: Path) -> None:
    markers = StepMarkers("\n", 26, 2, "answer:")
    markers.save(tmp_path)
    assert StepMarkers.load(tmp_path) == markers


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (32, 0, 8, 0.0),
        (32, 32, 8, 1.0),
        (32, 1, 1, 1 / 32),
        (32, 1, 8, 8 / 32),
        (32, 1, 32, 1.0),
        (8, 2, 8, 1.0),
        (4, 2, 2, 5 / 6),
    ],
)
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_prm_quality_counts() -> None:
    scores = [[0.9, 0.8, 0.7], [0.9, 0.1, 0.1], [0.2, 0.9], [0.9, 0.9]]
    labels = [[True, True, True], [True, False, False], [True, False], [True, True]]
    quality = prm_quality(scores, labels)
    assert quality.num_steps == 10
    # errors: 3 true error steps; predicted errors at (1,1), (1,2), (2,0) -> 2 hits, 1 false alarm, 1 miss
    assert quality.step_f1_error_class == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert quality.first_error_acc_erroneous == pytest.approx(1 / 2)
    assert quality.first_error_acc_correct == pytest.approx(1.0)
    assert quality.first_error_f1 == pytest.approx(2 / 3)
