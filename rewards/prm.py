"""Process reward models: one protocol, a registry of loaders by style, and aggregation.

`token-classification` covers the bundled Countdown PRM (and any HF token-classification
PRM with a `prm.json`); other styles (Qwen2.5-Math-PRM, Math-Shepherd) register beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from rewards.aggregation import AGGREGATIONS, aggregate
from rewards.prm_encoding import StepMarkers, encode_steps

__all__ = [
    "AGGREGATIONS",
    "PRM_STYLES",
    "ProcessRewardModel",
    "TokenClassificationPRM",
    "aggregate",
    "load_prm",
]

DEFAULT_BATCH_SIZE = 64


class ProcessRewardModel(Protocol):
    """Scores each step of a solution: the probability that the solution is still on track."""

    def score_steps(self, prompt: str, steps: list[str]) -> list[float]: ...

    def score_batch(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]: ...


class TokenClassificationPRM:
    """A 2-label token classifier read at step-end tokens; p(label 1) is the step score."""

    def __init__(self, folder: Path | str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        folder = Path(folder)
        self.markers = StepMarkers.load(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=True)
        self.model.eval()
        self.batch_size = batch_size

    def score_steps(self, prompt: str, steps: list[str]) -> list[float]:
        """Scores for one solution, one per step."""
        return self.score_batch([(prompt, steps)])[0]

    def score_batch(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]:
        """Scores for many solutions, run in padded batches of `batch_size`."""
        scores: list[list[float]] = []
        for start in range(0, len(items), self.batch_size):
            scores.extend(self._score_chunk(items[start : start + self.batch_size]))
        return scores

    @torch.inference_mode()
    def _score_chunk(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]:
        encoded = [encode_steps(self.tokenizer, self.markers, prompt, steps) for prompt, steps in items]
        width = max(len(e.ids) for e in encoded)
        input_ids = torch.full((len(encoded), width), int(self.tokenizer.pad_token_id))  # (B, T)
        attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)  # (B, T)
        for row, e in enumerate(encoded):
            input_ids[row, : len(e.ids)] = torch.tensor(e.ids)
            attention_mask[row, : len(e.ids)] = 1
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, 2)
        positive = logits.float().softmax(-1)[..., self.markers.positive_label]  # (B, T)
        return [[float(positive[row, i]) for i in e.step_ends] for row, e in enumerate(encoded)]


PRM_STYLES: dict[str, Callable[[Path], ProcessRewardModel]] = {
    "token-classification": TokenClassificationPRM,
}


def load_prm(folder: Path | str, style: str = "token-classification") -> ProcessRewardModel:
    """Load a PRM folder with the loader registered for `style`."""
    if style not in PRM_STYLES:
        raise ValueError(f"unknown PRM style {style!r}; valid: {', '.join(sorted(PRM_STYLES))}")
    return PRM_STYLES[style](Path(folder))
