"""Tiny random models in the published PRM formats, built in seconds for tests.

A character-level tokenizer (every printable character is a token, specials are whole tokens)
keeps them small and offline; `build_tiny_qwen_prm` saves a Qwen2.5-Math-PRM-style folder: a
Qwen2 token classifier with 2 labels and a tokenizer that has the `<extra_0>` step separator.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForTokenClassification

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
UNK = "<unk>"
INIT_STD = 0.3
"""Wider than the default 0.02 so random scores spread out and a misread position shows."""
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "initializer_range": INIT_STD,
}
"""The tiny models' shape: random weights, small enough to build in the test."""


def char_tokenizer(
    specials: list[str], words: tuple[str, ...] = (), **kwargs: str
) -> PreTrainedTokenizerFast:
    """Every printable character is a token; `specials` and `words` are whole tokens."""
    vocab = {token: index for index, token in enumerate([UNK, *specials, *words, *string.printable])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("|".join([*words, "."])), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK, **kwargs)
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [s for s in specials if s not in kwargs.values()]}
    )
    return tokenizer


def build_tiny_qwen_prm(folder: Path, seed: int = 0) -> Path:
    """Save a random Qwen2.5-Math-PRM-style model (2-label Qwen2 token classifier) in `folder`."""
    tokenizer = char_tokenizer(QWEN_SPECIALS, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    config = Qwen2Config(vocab_size=len(tokenizer), **TINY_SHAPE, pad_token_id=tokenizer.pad_token_id)
    config.num_labels = 2  # p(bad step), p(good step), as the published head
    torch.manual_seed(seed)
    Qwen2ForTokenClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
