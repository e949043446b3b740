"""Process reward models: one protocol, a registry of loaders by style, and aggregation.

Styles, each a loader for a local folder (nothing is downloaded):
- `token-classification`: the bundled Countdown PRM, or any HF token-classification PRM with
  a `prm.json` naming its step-end tokens (`rewards.prm_encoding`).
- `qwen2.5-math-prm`: read as Qwen/Qwen2.5-Math-PRM-7B is (`rewards.prm_qwen`).
- `math-shepherd`: read as peiyi9979/math-shepherd-mistral-7b-prm is (`rewards.prm_shepherd`).
- `claim-checker`: a causal LM that scores what each step claims (`rewards.prm_checker`).

`load_prm(folder)` detects the style from the folder's files, so callers that only know a
folder need not know its format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from engine.weights import require_safetensors
from rewards.aggregation import AGGREGATIONS, aggregate
from rewards.prm_batching import MarkedStepsPRM
from rewards.prm_checker import CHECKER_METADATA_FILE, ClaimCheckerPRM
from rewards.prm_encoding import PRM_METADATA_FILE
from rewards.prm_protocol import ProcessRewardModel
from rewards.prm_qwen import STEP_SEPARATOR as QWEN_STEP_SEPARATOR
from rewards.prm_qwen import QwenMathPRM
from rewards.prm_shepherd import STEP_TAG as SHEPHERD_STEP_TAG
from rewards.prm_shepherd import MathShepherdPRM

__all__ = [
    "AGGREGATIONS",
    "PRM_STYLES",
    "ClaimCheckerPRM",
    "MathShepherdPRM",
    "ProcessRewardModel",
    "QwenMathPRM",
    "TokenClassificationPRM",
    "aggregate",
    "detect_style",
    "load_prm",
]

SENTENCEPIECE_SPACE = "\u2581"
"""How sentencepiece vocabularies (Mistral, Llama) spell a leading space."""


class TokenClassificationPRM(MarkedStepsPRM):
    """A 2-label token classifier read at step-end tokens; p(label 1) is the step score."""

    model_class = AutoModelForTokenClassification

    def positive_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, 2)
        return logits.float().softmax(-1)[..., self.markers.positive_label]  # (B, T)


PRM_STYLES: dict[str, Callable[[Path], ProcessRewardModel]] = {
    "token-classification": TokenClassificationPRM,
    "qwen2.5-math-prm": QwenMathPRM,
    "math-shepherd": MathShepherdPRM,
    "claim-checker": ClaimCheckerPRM,
}


def detect_style(folder: Path | str) -> str:
    """The PRM style of a folder: `checker.json`, `prm.json`, else the step marker its tokenizer
    knows."""
    folder = Path(folder)
    if (folder / CHECKER_METADATA_FILE).is_file():
        return "claim-checker"
    if (folder / PRM_METADATA_FILE).is_file():
        return "token-classification"
    vocab = AutoTokenizer.from_pretrained(folder).get_vocab()
    if QWEN_STEP_SEPARATOR in vocab:
        return "qwen2.5-math-prm"
    if SHEPHERD_STEP_TAG in vocab or SENTENCEPIECE_SPACE + SHEPHERD_STEP_TAG in vocab:
        return "math-shepherd"
    raise ValueError(
        f"cannot tell the PRM style of {folder}: no {PRM_METADATA_FILE}, and its tokenizer has neither "
        f"{QWEN_STEP_SEPARATOR!r} nor {SHEPHERD_STEP_TAG!r}; pass one of: {', '.join(sorted(PRM_STYLES))}"
    )


def load_prm(folder: Path | str, style: str | None = None) -> ProcessRewardModel:
    """Load a PRM folder with the loader registered for `style` (detected when None)."""
    if style is not None and style not in PRM_STYLES:
        raise ValueError(f"unknown PRM style {style!r}; valid: {', '.join(sorted(PRM_STYLES))}")
    loader = PRM_STYLES[style or detect_style(folder)]  # reads config files only
    require_safetensors(folder)
    return loader(Path(folder))
