"""The Countdown tokenizer: exact round trips and the chat template the model expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainer.tokenizer import VOCAB, build_tokenizer

PROMPT = "countdown target=93 numbers=4,7,25,50"
REPLY = "50-25=25 (4,7,25)\n25*4=100 (7,100)\n100-7=93 (93)\nanswer: (((50-25)*4)-7)"


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return build_tokenizer()


def test_vocabulary_is_small_and_fixed(tokenizer: PreTrainedTokenizerBase) -> None:
    assert len(tokenizer) == len(VOCAB) == 27
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)


@pytest.mark.parametrize(
    ("text", "num_tokens"),
    [(PROMPT, 16), (REPLY, len(REPLY) - len("answer:") + 1), ("countdown target=", 3), ("answer: (1+2)", 7)],
)
def test_keywords_are_single_tokens_and_round_trip(
    tokenizer: PreTrainedTokenizerBase, text: str, num_tokens: int
) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == num_tokens
    assert tokenizer.decode(ids) == text
    with_specials = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(with_specials, skip_special_tokens=True) == text


def test_generation_prompt_is_bos_prompt_newline(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    prompt_ids = tokenizer(PROMPT + "\n", add_special_tokens=False)["input_ids"]
    assert ids == [tokenizer.bos_token_id, *prompt_ids]


def test_full_conversation_ends_with_eos(tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": REPLY}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == f"<bos>{PROMPT}\n{REPLY}<eos>"


def test_save_and_reload(tokenizer: PreTrainedTokenizerBase, tmp_path: Path) -> None:
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (
        loaded(REPLY, add_special_tokens=False)["input_ids"]
        == tokenizer(REPLY, add_special_tokens=False)["input_ids"]
    )
    messages = [{"role": "user", "content": PROMPT}]
    ids = loaded.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert loaded.decode(ids, skip_special_tokens=True) == PROMPT + "\n"
