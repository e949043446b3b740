"""Pure request checks: context budget, settings limits, and the mapping to SamplingParams."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import ApiError
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.sampling import check_request_limits, resolve_max_tokens, to_sampling_params

CONTEXT = 100
CAP = 50


def chat(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]} | fields
    )


@pytest.mark.parametrize(
    ("num_prompt", "fields", "expected"),
    [
        (10, {}, CAP),  # default: what fits, capped by the settings
        (80, {}, 20),  # default: what fits when less than the cap
        (10, {"max_tokens": 7}, 7),
        (90, {"max_tokens": 10}, 10),  # exactly fills the context
        (10, {"max_tokens": 7, "max_completion_tokens": 9}, 9),  # the newer field wins
    ],
)
def test_resolve_max_tokens_fits(num_prompt: int, fields: dict[str, Any], expected: int) -> None:
    assert resolve_max_tokens(num_prompt, chat(**fields), CONTEXT, CAP, "messages") == expected


@pytest.mark.parametrize(
    ("num_prompt", "fields", "param"),
    [
        (100, {}, "messages"),  # the prompt alone fills the context
        (150, {"max_tokens": 1}, "messages"),
        (90, {"max_tokens": 11}, "max_tokens"),
        (90, {"max_completion_tokens": 11}, "max_completion_tokens"),
    ],
)
def test_resolve_max_tokens_rejects_what_cannot_fit(
    num_prompt: int, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(ApiError) as raised:
        resolve_max_tokens(num_prompt, chat(**fields), CONTEXT, CAP, "messages")
    assert (raised.value.status, raised.value.param, raised.value.code) == (
        400,
        param,
        "context_length_exceeded",
    )
    assert str(CONTEXT) in raised.value.message


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"n": 9}, "n", "invalid_value"),
        ({"max_tokens": CAP + 1}, "max_tokens", "invalid_value"),
        ({"max_completion_tokens": CAP + 1}, "max_completion_tokens", "invalid_value"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "unsupported_parameter"),
        ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_parameter"),
        ({"tool_choice": "auto"}, "tool_choice", "unsupported_parameter"),
        ({"logit_bias": {"42": 5}}, "logit_bias", "unsupported_parameter"),
        ({"echo": True}, "echo", "unsupported_parameter"),
    ],
)
def test_check_request_limits_rejects(fields: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(ApiError) as raised:
        check_request_limits(chat(**fields), max_n=8, max_tokens_cap=CAP)
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, param, code)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"n": 8, "max_tokens": CAP},
        {"response_format": {"type": "text"}, "tool_choice": "none", "tools": [], "logit_bias": {}},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"some_future_field": 1, "search": {"strategy": "beam"}, "reasoning_effort": "high"},
    ],
)
def test_check_request_limits_accepts(fields: dict[str, Any]) -> None:
    check_request_limits(chat(**fields), max_n=8, max_tokens_cap=CAP)


def test_to_sampling_params_maps_openai_fields() -> None:
    request = chat(temperature=0.5, top_p=0.9, n=3, stop="###", seed=7, top_k=5, ignore_eos=True)
    params = to_sampling_params(request, max_new_tokens=12, num_top_logprobs=2)
    assert (params.max_new_tokens, params.temperature, params.top_p, params.top_k) == (12, 0.5, 0.9, 5)
    assert (params.n, params.stop, params.seed, params.ignore_eos) == (3, ("###",), 7, True)
    assert (params.logprobs, params.top_logprobs) == (True, 2)


def test_to_sampling_params_openai_defaults() -> None:
    params = to_sampling_params(
        CompletionRequest(model="m", prompt="x"), max_new_tokens=4, num_top_logprobs=None
    )
    assert (params.temperature, params.top_p, params.top_k, params.n) == (1.0, 1.0, 0, 1)
    assert (params.stop, params.seed, params.logprobs, params.top_logprobs) == ((), None, False, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, (0.2, 0.9, 40)),  # unset fields take the model's recommended values
        ({"temperature": 0.0}, (0.0, 0.9, 40)),  # an explicit value, even 0, wins
        ({"temperature": 1.0, "top_p": 1.0, "top_k": 0}, (1.0, 1.0, 0)),
    ],
)
def test_model_sampling_defaults_fill_only_unset_fields(body: dict[str, float], expected: tuple) -> None:
    model_defaults = {"temperature": 0.2, "top_p": 0.9, "top_k": 40.0}
    params = to_sampling_params(chat(**body), 8, None, model_defaults)
    assert (params.temperature, params.top_p, params.top_k) == expected
