"""How a (prompt, steps) pair becomes PRM input: ids plus the positions that carry step scores.

Shared by the PRM trainer and the scorer so training and inference never disagree. Like
Qwen2.5-Math-PRM, a 2-way classifier is read at the token that ends each step: the step
separator after an ordinary step, and EOS after the final (answer) step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

PRM_METADATA_FILE = "prm.json"


@dataclass(frozen=True)
class StepMarkers:
    """Which tokens end steps, stored beside the weights in `prm.json`."""

    prompt_separator: str
    step_end_token_id: int
    final_end_token_id: int
    final_step_prefix: str
    positive_label: int = 1

    def save(self, folder: Path) -> None:
        (folder / PRM_METADATA_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> StepMarkers:
        return cls(**json.loads((folder / PRM_METADATA_FILE).read_text()))


@dataclass(frozen=True)
class EncodedSteps:
    """Token ids (bos first) and, for each step, the index of the token that ends it."""

    ids: list[int]
    step_ends: list[int]


def encode_steps(
    tokenizer: PreTrainedTokenizerBase, markers: StepMarkers, prompt: str, steps: list[str]
) -> EncodedSteps:
    """bos + prompt + separator, then each step followed by its end token."""
    pieces = tokenizer([prompt + markers.prompt_separator, *steps], add_special_tokens=False)["input_ids"]
    ids = [int(tokenizer.bos_token_id), *pieces[0]]
    step_ends: list[int] = []
    for step, piece in zip(steps, pieces[1:], strict=True):
        is_final = step.startswith(markers.final_step_prefix)
        ids.extend(piece)
        ids.append(markers.final_end_token_id if is_final else markers.step_end_token_id)
        step_ends.append(len(ids) - 1)
    return EncodedSteps(ids=ids, step_ends=step_ends)
