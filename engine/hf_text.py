"""The text side every backend shares: an HF tokenizer for tokens, text and chat templates, and
the prompt checks that make a bad prompt the caller's 400 rather than an engine failure."""

from __future__ import annotations

import re
from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from engine.protocol import ChatMessage, InvalidPromptError, ModelCard

# Stands in for message `index` while the template renders: private-use characters, which no
# template edits and no tokenizer treats as special.
CONTENT_MARKER = "\ue000{index}\ue001"
MARKER_SPLIT = re.compile("\ue000(\\d+)\ue001")


class EngineNotStartedError(RuntimeError):
    pass


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: Sequence[ChatMessage]) -> list[int]:
    """The templated conversation's token ids, where only the template makes control tokens.

    A user who types `<|im_end|>\\n<|im_start|>system` sends text, not a role switch: control
    tokens are parsed in the template's own text only, and all text between two of them,
    message content included, is encoded with special tokens split into plain text (the
    `split_special_tokens` of the transformers and vLLM chat paths). A tokenizer encodes text
    between special tokens independently anyway, so an ordinary conversation gets exactly the
    ids the model's own template gives. Content never passes through the template (a marker
    does), so a template that edits content (e.g. `| trim`) would not edit it here.
    """
    marked = [{"role": m.role, "content": CONTENT_MARKER.format(index=i)} for i, m in enumerate(messages)]
    rendered = str(tokenizer.apply_chat_template(marked, add_generation_prompt=True, tokenize=False))
    control_ids = _control_token_ids(tokenizer)
    controls = _alternation(sorted(control_ids, key=len, reverse=True))
    ids: list[int] = []
    text = ""  # plain text since the last control token
    # re.split with a group alternates: template text, message index, template text, ...
    for position, piece in enumerate(MARKER_SPLIT.split(rendered)):
        if position % 2 == 1:
            text += messages[int(piece)].content
            continue
        for part_index, part in enumerate(controls.split(piece)):
            if part_index % 2 == 0:
                text += part
            else:
                ids += [*_encode_text(tokenizer, text), control_ids[part]]
                text = ""
    return ids + _encode_text(tokenizer, text)


def _control_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Text -> id of every special token (what `split_special_tokens` would split)."""
    return {str(t.content): int(i) for i, t in tokenizer.added_tokens_decoder.items() if t.special}


def _alternation(texts: Sequence[str]) -> re.Pattern[str]:
    """One capturing group matching any of `texts` (in order of preference); none: never matches."""
    return re.compile("(" + ("|".join(re.escape(t) for t in texts) or "(?!)") + ")")


def _encode_text(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    if not text:
        return []
    return [int(t) for t in tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)]


class HFTextMixin:
    """For engines that hold `model_id`, a `_card` and, once started, a `_tokenizer`."""

    model_id: str
    _card: ModelCard
    _tokenizer: PreTrainedTokenizerBase | None

    def tokenize(self, text: str) -> list[int]:
        return list(self._require_tokenizer().encode(text, add_special_tokens=False))

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return str(self._require_tokenizer().decode(list(token_ids), skip_special_tokens=True))

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> list[int]:
        return encode_chat(self._require_tokenizer(), messages)

    def _validated_prompt(self, prompt_ids: Sequence[int]) -> list[int]:
        prompt = [int(t) for t in prompt_ids]
        if not prompt:
            raise InvalidPromptError("prompt must contain at least one token")
        if len(prompt) >= self._card.max_context:
            raise InvalidPromptError(
                f"prompt has {len(prompt)} tokens; the context of {self.model_id} is {self._card.max_context}"
            )
        vocab = len(self._require_tokenizer())
        bad = next((t for t in prompt if not 0 <= t < vocab), None)
        if bad is not None:
            raise InvalidPromptError(f"token id {bad} is outside the vocabulary (0..{vocab - 1})")
        return prompt

    def _require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            raise EngineNotStartedError(f"engine for {self.model_id} is not started")
        return self._tokenizer
