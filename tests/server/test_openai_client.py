"""The official `openai` client against the real server and the real SmolLM2 engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
MAX_TOKENS = 8  # enough to see text; every token costs time on a busy 2-core machine


@pytest.fixture(scope="module")
def client(live_server: Any) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{live_server.base_url}/v1", api_key=live_server.api_key, max_retries=0) as openai:
        yield openai


def test_non_stream_chat(client: OpenAI, live_server: Any) -> None:
    response = client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,
        max_tokens=MAX_TOKENS,
        temperature=0,  # type: ignore[arg-type]
    )
    assert response.object == "chat.completion" and response.id.startswith("chatcmpl-")
    assert response.model == live_server.model
    (choice,) = response.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_matches_non_stream_and_usage_adds_up(client: OpenAI, live_server: Any) -> None:
    kwargs: dict[str, Any] = {"model": live_server.model, "messages": QUESTION, "max_tokens": MAX_TOKENS}
    whole = client.chat.completions.create(temperature=0, **kwargs)
    stream = client.chat.completions.create(
        temperature=0, stream=True, stream_options={"include_usage": True}, logprobs=True, **kwargs
    )
    text, num_tokens, finish_reasons, usage = "", 0, [], None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text += choice.delta.content or ""
            num_tokens += len(choice.logprobs.content or []) if choice.logprobs else 0
            finish_reasons += [choice.finish_reason] if choice.finish_reason else []
        usage = chunk.usage or usage
    assert text == whole.choices[0].message.content  # greedy: streaming changes nothing
    assert finish_reasons == [whole.choices[0].finish_reason]
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == num_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_n_choices_usage_counts_every_token(client: OpenAI, live_server: Any) -> None:
    response = client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=4,
        n=4,
        temperature=1.0,
        logprobs=True,
    )
    assert sorted(choice.index for choice in response.choices) == [0, 1, 2, 3]
    tokens_per_choice = [len(choice.logprobs.content or []) for choice in response.choices if choice.logprobs]
    assert len(tokens_per_choice) == 4
    assert response.usage is not None
    assert response.usage.completion_tokens == sum(tokens_per_choice)
    texts = {choice.message.content for choice in response.choices}
    assert len(texts) > 1  # four samples at temperature 1 are not all the same


def test_same_seed_same_text(client: OpenAI, live_server: Any) -> None:
    def sample(seed: int) -> str | None:
        response = client.chat.completions.create(
            model=live_server.model,
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=5,
            temperature=1.0,
            seed=seed,
        )
        return response.choices[0].message.content

    first = sample(1234)
    assert first and first == sample(1234)


def test_logprobs_in_openai_format(client: OpenAI, live_server: Any) -> None:
    response = client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    logprobs = response.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    for entry in logprobs.content:
        assert entry.logprob <= 0.0
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3
        # Greedy: the sampled token is the most likely one.
        assert entry.logprob == pytest.approx(max(top.logprob for top in entry.top_logprobs))
