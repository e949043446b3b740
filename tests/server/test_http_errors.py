"""Every bad request gets its status and an OpenAI envelope naming the parameter, and leaves no state.

Runs against the live server: the context checks use the real tokenizer, and the engine's cache
counters prove that no rejected request reached the engine.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

MODEL = "smollm2-135m-instruct"
HI = [{"role": "user", "content": "hi"}]
CONTEXT = 8192  # SmolLM2's max_position_embeddings
# " hi" is one token, so this message alone overflows the context while staying under 64 KiB.
OVERFLOWING = [{"role": "user", "content": " hi" * (CONTEXT + 10)}]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": HI, "max_tokens": 4} | fields


CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
MISSING, INVALID, UNSUPPORTED = "missing_required_parameter", "invalid_value", "unsupported_parameter"
TOO_LONG, NOT_FOUND, BAD_PROMPT = "context_length_exceeded", "model_not_found", "invalid_prompt"
IMAGE = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
TOOLS = [{"type": "function", "function": {"name": "f"}}]
SURROGATE = [{"role": "user", "content": "a\ud800b"}]  # valid JSON ("\\ud800"), not valid Unicode

BAD_REQUESTS = [
    # (id, path, body, status, param, code)
    ("missing-messages", CHAT, {"model": MODEL}, 400, "messages", MISSING),
    ("missing-model", CHAT, {"messages": HI}, 400, "model", MISSING),
    ("unknown-model", CHAT, chat(model="gpt-4o"), 404, "model", NOT_FOUND),
    ("reward-model-not-served", CHAT, chat(model="countdown-prm"), 404, "model", NOT_FOUND),
    ("negative-temperature", CHAT, chat(temperature=-1), 400, "temperature", INVALID),
    ("n-zero", CHAT, chat(n=0), 400, "n", INVALID),
    ("n-over-max", CHAT, chat(n=9), 400, "n", INVALID),
    ("top-p-zero", CHAT, chat(top_p=0), 400, "top_p", INVALID),
    ("max-tokens-over-cap", CHAT, chat(max_tokens=1025), 400, "max_tokens", INVALID),
    ("empty-messages", CHAT, chat(messages=[]), 400, "messages", INVALID),
    ("bad-role", CHAT, chat(messages=[{"role": "robot", "content": "x"}]), 400, "messages[0].role", INVALID),
    ("image-part", CHAT, chat(messages=IMAGE), 400, "messages[0].content[0].type", INVALID),
    ("prompt-over-context", CHAT, chat(messages=OVERFLOWING), 400, "messages", TOO_LONG),
    ("tools", CHAT, chat(tools=TOOLS), 400, "tools", UNSUPPORTED),
    ("json-mode", CHAT, chat(response_format={"type": "json_object"}), 400, "response_format", UNSUPPORTED),
    ("top-logprobs-alone", CHAT, chat(top_logprobs=2), 400, "top_logprobs", INVALID),
    ("batch-prompt", COMPLETIONS, {"model": MODEL, "prompt": [[1, 2]]}, 400, "prompt", INVALID),
    (
        "prompt-ids-over-context",
        COMPLETIONS,
        {"model": MODEL, "prompt": [1] * CONTEXT},
        400,
        "prompt",
        TOO_LONG,
    ),
    ("echo", COMPLETIONS, {"model": MODEL, "prompt": "x", "echo": True}, 400, "echo", UNSUPPORTED),
    ("token-outside-vocab", COMPLETIONS, {"model": MODEL, "prompt": [10**8]}, 400, "prompt", BAD_PROMPT),
    (
        "token-outside-vocab-stream",
        COMPLETIONS,
        {"model": MODEL, "prompt": [10**8], "stream": True},
        400,
        "prompt",
        BAD_PROMPT,
    ),
    ("lone-surrogate-chat", CHAT, chat(messages=SURROGATE), 400, "messages[0].content[0].text", INVALID),
    (
        "lone-surrogate-chat-stream",
        CHAT,
        chat(messages=SURROGATE, stream=True),
        400,
        "messages[0].content[0].text",
        INVALID,
    ),
    ("lone-surrogate-prompt", COMPLETIONS, {"model": MODEL, "prompt": "a\ud800b"}, 400, "prompt", INVALID),
    ("lone-surrogate-stop", CHAT, chat(stop=["a\udfffb"]), 400, "stop[0]", INVALID),
]


def post_json(http: httpx.Client, path: str, body: Any) -> httpx.Response:
    """POST `body` as ASCII JSON: httpx's `json=` writes raw UTF-8 and so cannot send a lone
    surrogate, which a JSON client may legally send escaped as `\\ud800`."""
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "code"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[c[0] for c in BAD_REQUESTS],
)
def test_bad_request_envelope(
    http: httpx.Client, path: str, body: Any, status: int, param: str, code: str
) -> None:
    response = post_json(http, path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert param in error["message"]


def count_responses(base_url: str, route: str, status: int) -> float:
    """`ponder_http_requests_total` for one route and status (0 before the first such response)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = (sample.labels.get("route"), sample.labels.get("status"))
            if sample.name == "ponder_http_requests_total" and labels == (route, str(status)):
                return float(sample.value)
    return 0.0


def test_engine_rejected_prompt_is_a_clean_400(http: httpx.Client, live_server: Any) -> None:
    """A prompt the engine refuses (a token id outside the vocabulary) is counted as the 400 the
    client got, not as a 500, and is not logged as an unhandled exception."""
    base = live_server.base_url
    before = {status: count_responses(base, COMPLETIONS, status) for status in (400, 500)}
    response = http.post(COMPLETIONS, json={"model": MODEL, "prompt": [10**8], "max_tokens": 1})
    assert response.status_code == 400
    assert count_responses(base, COMPLETIONS, 400) == before[400] + 1
    assert count_responses(base, COMPLETIONS, 500) == before[500]
    assert "Exception in ASGI application" not in live_server.log_tail(100_000)


NEARLY_FULL = [{"role": "user", "content": " hi" * (CONTEXT - 500)}]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", chat(messages=NEARLY_FULL, max_tokens=1000), "max_tokens"),
        (
            "/v1/chat/completions",
            chat(messages=NEARLY_FULL, max_completion_tokens=1000),
            "max_completion_tokens",
        ),
        ("/v1/completions", {"model": MODEL, "prompt": [1] * (CONTEXT - 10), "max_tokens": 11}, "max_tokens"),
    ],
)
def test_max_tokens_beyond_context(http: httpx.Client, path: str, body: Any, param: str) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "context_length_exceeded")
    assert str(CONTEXT) in error["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "code"),
    [(b'{"model": "x", "messages": [', "application/json", "invalid_json"), (b"model=x", "text/plain", None)],
)
def test_malformed_body(http: httpx.Client, content: bytes, content_type: str, code: str | None) -> None:
    response = http.post(CHAT, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert "JSON" in response.json()["error"]["message"]


def _chunks(body: bytes) -> Any:
    yield from (body[i : i + 4096] for i in range(0, len(body), 4096))


@pytest.mark.parametrize("is_chunked", [False, True], ids=["content-length", "chunked"])
def test_body_too_large(http: httpx.Client, live_server: Any, is_chunked: bool) -> None:
    body = (
        b'{"model": "x", "messages": [{"role": "user", "content": "'
        + b"a" * live_server.max_request_bytes
        + b'"}]}'
    )
    content = _chunks(body) if is_chunked else body
    response = http.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert str(live_server.max_request_bytes) in response.json()["error"]["message"]


def test_rejected_requests_leave_no_state(http: httpx.Client, read_metric: Any) -> None:
    """Validation happens before the engine: its counters do not move for any bad request."""
    before = read_metric("ponder_cache_prompt_tokens_requested_total")
    for _, path, body, status, _, _ in BAD_REQUESTS:
        assert post_json(http, path, body).status_code == status
    assert read_metric("ponder_cache_prompt_tokens_requested_total") == before
    assert read_metric("ponder_cache_running_sequences") == 0
    assert read_metric("ponder_requests_in_flight") == 0


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/v1/models", {}),
        ("POST", "/v1/chat/completions", {}),
        ("POST", "/v1/completions", {"Authorization": "Bearer sk-wrong"}),
        ("GET", "/v1/models", {"Authorization": "sk-ponder-test"}),  # the right key without "Bearer"
    ],
)
def test_missing_or_wrong_key_is_401(
    live_server: Any, method: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.request(
        method, f"{live_server.base_url}{path}", headers=headers, json=chat(), timeout=30
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert live_server.api_key not in response.text


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_probes_stay_open_without_key(live_server: Any, path: str) -> None:
    assert httpx.get(f"{live_server.base_url}{path}", timeout=30).status_code == 200
