"""The `math-shepherd` style: PRMs used as peiyi9979/math-shepherd-mistral-7b-prm is, from a local folder.

The PRM is a causal LM trained to predict `+` (good step) or `-` (bad step) right after the
step tag ` ки` that ends each step. The input is `question + " " + steps`, one step per line,
each ending with the tag; a step's score is softmax over the `+`/`-` next-token logits at its
tag, probability of `+`. Token ids come from the tokenizer the way the model card derives them
(last token of each marker's encoding), never hard-coded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from rewards.prm_batching import DEFAULT_BATCH_SIZE, PaddedBatchPRM, logits_of, pad_id_of, token_positions
from rewards.prm_encoding import EncodedSteps

STEP_TAG = "ки"
"""Ends every step (Math-Shepherd model card); written after a space."""
GOOD_TOKEN = "+"
BAD_TOKEN = "-"


def marker_id(tokenizer: PreTrainedTokenizerBase, marker: str) -> int:
    """The id a marker is read as: the last token of its encoding, as the model card takes it."""
    ids = tokenizer.encode(marker, add_special_tokens=False)
    if not ids:
        raise ValueError(f"the tokenizer encodes {marker!r} to nothing")
    return int(ids[-1])


class MathShepherdPRM(PaddedBatchPRM):
    """p(`+`) among {`+`, `-`} as the next token after each step tag."""

    def __init__(self, folder: Path | str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.step_tag_id = marker_id(self.tokenizer, STEP_TAG)
        self.candidate_ids = [marker_id(self.tokenizer, GOOD_TOKEN), marker_id(self.tokenizer, BAD_TOKEN)]
        self.model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
        self.model.eval()
        self.pad_token_id = pad_id_of(self.tokenizer)
        self.batch_size = batch_size

    def encode(self, prompt: str, steps: list[str]) -> EncodedSteps:
        """`question step1 ки\\nstep2 ки`, with the tokenizer's own special tokens (BOS for Mistral)."""
        text = prompt + " " + "\n".join(f"{step} {STEP_TAG}" for step in steps)
        ids = [int(i) for i in self.tokenizer(text)["input_ids"]]
        return EncodedSteps(ids=ids, step_ends=token_positions(ids, self.step_tag_id, len(steps)))

    def positive_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = logits_of(self.model(input_ids=input_ids, attention_mask=attention_mask))  # (B, T, V)
        candidates = logits[..., self.candidate_ids].float()  # (B, T, 2): good, bad
        return candidates.softmax(-1)[..., 0]  # (B, T)
