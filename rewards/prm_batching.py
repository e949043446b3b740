"""What every transformers PRM scorer shares: chunking, right padding, and reading step positions.

A PRM style differs only in how a (prompt, steps) pair becomes token ids plus the positions
that carry step scores, and in how model output becomes p(step is good) per token. Padding is
on the right: the backbones are causal, so the real tokens of a shorter row see exactly what
they would see unpadded, at the same position ids; left padding would shift the positions that
HF models derive from the sequence index and change the scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rewards.prm_encoding import EncodedSteps, StepMarkers, encode_steps

DEFAULT_BATCH_SIZE = 64


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id rows padded on the right to one width, and the mask of real tokens."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[index, : len(row)] = 1
    return input_ids, attention_mask


def logits_of(output: Any) -> torch.Tensor:
    """Logits from a model's output: a `ModelOutput`, a tuple led by logits, or a bare tensor.

    Published PRMs with custom code (`trust_remote_code`) do not all return a `ModelOutput`.
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else output[0]


def token_positions(ids: Sequence[int], token_id: int, num_steps: int) -> list[int]:
    """Where `token_id` occurs in `ids`; one per step, else the text holds a stray marker."""
    positions = [index for index, token in enumerate(ids) if token == token_id]
    if len(positions) != num_steps:
        raise ValueError(
            f"expected {num_steps} step-marker tokens (id {token_id}) but found {len(positions)}; "
            "the prompt or a step probably contains the marker text"
        )
    return positions


def pad_id_of(tokenizer: PreTrainedTokenizerBase) -> int:
    """A valid id for padding; its value never matters since the mask hides it."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


class PaddedBatchPRM(ABC):
    """Scores (prompt, steps) pairs in right-padded batches of `batch_size`.

    Subclasses set `model`, `pad_token_id` and `batch_size`, and say how to `encode` a pair
    and how to turn model inputs into `positive_probs`.
    """

    model: torch.nn.Module
    pad_token_id: int
    batch_size: int

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
        encoded = [self.encode(prompt, steps) for prompt, steps in items]
        input_ids, attention_mask = right_pad([e.ids for e in encoded], self.pad_token_id)
        device = next(self.model.parameters()).device
        positive = self.positive_probs(input_ids.to(device), attention_mask.to(device))  # (B, T)
        positive = positive.float().cpu()
        return [[float(positive[row, i]) for i in e.step_ends] for row, e in enumerate(encoded)]

    @abstractmethod
    def encode(self, prompt: str, steps: list[str]) -> EncodedSteps:
        """Token ids of one solution and, per step, the position its score is read at."""

    @abstractmethod
    def positive_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """p(step is good) at every token: (B, T) from (B, T) inputs."""


class MarkedStepsPRM(PaddedBatchPRM):
    """A PRM folder of this project's making: its step markers in `prm.json`, steps encoded
    exactly as the trainer encoded them. Subclasses name the model class to load and say how
    its output becomes `positive_probs`."""

    model_class: ClassVar[Any]
    """An `AutoModelFor...` class: how the folder's weights are read."""

    def __init__(self, folder: Path | str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        folder = Path(folder)
        self.markers = StepMarkers.load(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = self.model_class.from_pretrained(folder, use_safetensors=True)
        self.model.eval()
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.batch_size = batch_size

    def encode(self, prompt: str, steps: list[str]) -> EncodedSteps:
        return encode_steps(self.tokenizer, self.markers, prompt, steps)
