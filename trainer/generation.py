"""Batched sampling from a local HF causal LM, for rollouts (PRM labels) and the bench.

Prefixes of different lengths share one `generate` call through left padding; batching is
where the speed is on CPU (about 17x more tokens/s at batch 32 than at batch 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.tokenizer import REPLY_SEPARATOR

MAX_REPLY_TOKENS = 96
"""Solver replies are at most 87 tokens with eos; the cap bounds runaway samples, which stall a batch."""


@dataclass(frozen=True)
class Sampling:
    """How to decode: greedy when temperature is 0, else pure temperature sampling."""

    temperature: float = 1.0
    num_return_sequences: int = 1
    max_new_tokens: int = MAX_REPLY_TOKENS


def reply_prefix(prompt: str, partial_reply: str = "") -> str:
    """The text the model continues: prompt, separator, and the reply written so far."""
    return prompt + REPLY_SEPARATOR + partial_reply


def left_padded(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """bos + text ids, left padded to a common width."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    rows = [[tokenizer.bos_token_id, *ids] for ids in encoded]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), int(tokenizer.pad_token_id), dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        attention_mask[i, width - len(row) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@torch.inference_mode()
def continue_texts(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prefixes: Sequence[str], sampling: Sampling
) -> list[list[str]]:
    """For each prefix, `num_return_sequences` continuations (text after the prefix, no eos)."""
    batch = left_padded(tokenizer, prefixes)
    is_greedy = sampling.temperature == 0.0
    extra = {} if is_greedy else {"temperature": sampling.temperature, "top_k": 0, "top_p": 1.0}
    output = model.generate(  # type: ignore[operator]
        **batch,
        do_sample=not is_greedy,
        num_return_sequences=sampling.num_return_sequences,
        max_new_tokens=sampling.max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    new_tokens = output[:, batch["input_ids"].shape[1] :]  # (B * n, T_new)
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    n = sampling.num_return_sequences
    return [texts[i * n : (i + 1) * n] for i in range(len(prefixes))]
