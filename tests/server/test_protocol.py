"""Request bodies: pydantic bounds, reported through `server.errors` with the parameter's name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from server.errors import from_validation_errors
from server.protocol import ChatCompletionRequest, CompletionRequest

MESSAGES = [{"role": "user", "content": "hi"}]


def rejected_param(model: type[BaseModel], body: dict[str, Any]) -> str | None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    error = from_validation_errors(raised.value.errors())
    assert error.status == 400
    return error.param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"messages": MESSAGES}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": MESSAGES, "temperature": -0.1}, "temperature"),
        ({"model": "m", "messages": MESSAGES, "temperature": 2.5}, "temperature"),
        ({"model": "m", "messages": MESSAGES, "top_p": 0}, "top_p"),
        ({"model": "m", "messages": MESSAGES, "n": 0}, "n"),
        ({"model": "m", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": MESSAGES, "top_logprobs": 21}, "top_logprobs"),
        ({"model": "m", "messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "messages": MESSAGES, "stop": [""]}, "stop[0]"),
        ({"model": "m", "messages": MESSAGES, "presence_penalty": 3}, "presence_penalty"),
        ({"model": "m", "messages": MESSAGES, "seed": 2**64}, "seed"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": MESSAGES, "stream_options": {"include_usage": "maybe"}},
            "stream_options.include_usage",
        ),
    ],
)
def test_chat_request_rejections_name_the_param(body: dict[str, Any], param: str) -> None:
    assert rejected_param(ChatCompletionRequest, body) == param


@pytest.mark.parametrize(
    ("prompt", "logprobs"),
    [(["a", "b"], None), ([[1, 2], [3]], None), ([1, -2], None), ("", None), ([], None), (5, None), ("x", 6)],
)
def test_completion_request_rejections(prompt: Any, logprobs: int | None) -> None:
    param = rejected_param(CompletionRequest, {"model": "m", "prompt": prompt, "logprobs": logprobs})
    assert param == ("logprobs" if logprobs is not None else "prompt")


def test_chat_request_normalizes_content_and_stop() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ],
            "stop": "\n\n",
            "unknown_field": {"ignored": True},
        }
    )
    assert request.messages[0].text() == "a\nb"
    assert request.stop == ["\n\n"]
    assert request.model_extra == {"unknown_field": {"ignored": True}}


def test_ponder_extensions_are_typed() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": MESSAGES,
            "search": {"strategy": "beam", "beam_width": 4},
            "reasoning_effort": "low",
        }
    )
    assert request.search is not None and (request.search.strategy, request.search.beam_width) == ("beam", 4)
    assert request.reasoning_effort == "low"
    assert (
        rejected_param(ChatCompletionRequest, {"model": "m", "messages": MESSAGES, "search": 3}) == "search"
    )
    unknown_knob = {"model": "m", "messages": MESSAGES, "search": {"width": 4}}
    assert rejected_param(ChatCompletionRequest, unknown_knob) == "search.width"
