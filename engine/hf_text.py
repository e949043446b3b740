"""The text side every backend shares: an HF tokenizer for tokens, text and chat templates, and
the prompt checks that make a bad prompt the caller's 400 rather than an engine failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from engine.protocol import ChatMessage, InvalidPromptError, ModelCard


class EngineNotStartedError(RuntimeError):
    pass


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
        tokenizer = self._require_tokenizer()
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        ids: Any = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return [int(t) for t in ids]

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
