"""The 27-token Countdown tokenizer, built with the `tokenizers` library.

Keywords are single tokens and every other character is its own token, so arithmetic is
seen digit by digit and decoding is plain concatenation (exact round trip).
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
KEYWORDS = ("countdown", "target=", "numbers=", "answer:")
CHARACTERS = tuple("0123456789+-*/=(),") + (" ", "\n")
VOCAB = SPECIAL_TOKENS + KEYWORDS + CHARACTERS
REPLY_SEPARATOR = "\n"
"""Goes between the user prompt and the reply; the generation prompt ends with it."""
STEP_END = "\n"
"""Ends every step line; EOS ends the answer line."""

_SPLIT_PATTERN = r"countdown|target=|numbers=|answer:|."
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '\\n' }}{{ message['content'] }}{{ eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh tokenizer; ids follow `VOCAB` order so they never change between builds."""
    vocab = {token: index for index, token in enumerate(VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
