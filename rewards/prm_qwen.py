"""The `qwen2.5-math-prm` style: PRMs used as Qwen/Qwen2.5-Math-PRM-7B is, from a local folder.

The solution goes in a chat: the Qwen math system prompt, the question as the user turn, and
the steps as the assistant turn, each step followed by the separator token `<extra_0>`. A
2-way head scores every token; p(class 1) at each separator is that step's score. Published
checkpoints ship their head as custom code (`auto_map` in config.json), so those load through
`AutoModel` with `trust_remote_code`; that runs Python from the folder, so only load folders
you trust. Without `auto_map`, a `*ForTokenClassification` with 2 labels is the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

from rewards.prm_batching import (
    DEFAULT_BATCH_SIZE,
    PaddedBatchPRM,
    logits_of,
    pad_id_of,
    token_positions,
)
from rewards.prm_encoding import EncodedSteps

STEP_SEPARATOR = "<extra_0>"
"""Ends every step in the assistant turn (Qwen2.5-Math-PRM model card)."""
SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system turn the Qwen2.5-Math-PRM model card scores with."""
POSITIVE_LABEL = 1


def has_custom_code(folder: Path) -> bool:
    """Whether config.json maps the model to code shipped in the folder."""
    return "auto_map" in json.loads((folder / "config.json").read_text())


class QwenMathPRM(PaddedBatchPRM):
    """p(class 1) of a 2-way token head, read at each `<extra_0>` after a step."""

    def __init__(self, folder: Path | str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        vocab = self.tokenizer.get_vocab()
        if STEP_SEPARATOR not in vocab:
            raise ValueError(f"the tokenizer in {folder} has no {STEP_SEPARATOR} token")
        self.separator_id = int(vocab[STEP_SEPARATOR])
        if has_custom_code(folder):
            self.model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
        else:
            self.model = AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=True)
        self.model.eval()
        self.pad_token_id = pad_id_of(self.tokenizer)
        self.batch_size = batch_size

    def encode(self, prompt: str, steps: list[str]) -> EncodedSteps:
        """The chat as the model card builds it: steps joined by, and ended with, `<extra_0>`."""
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": "".join(step + STEP_SEPARATOR for step in steps)},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = [int(i) for i in self.tokenizer(str(text), add_special_tokens=False)["input_ids"]]
        return EncodedSteps(ids=ids, step_ends=token_positions(ids, self.separator_id, len(steps)))

    def positive_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = logits_of(self.model(input_ids=input_ids, attention_mask=attention_mask))  # (B, T, 2)
        return logits.float().softmax(-1)[..., POSITIVE_LABEL]  # (B, T)
