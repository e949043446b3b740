"""Concurrency limit (429) and cancellation: a client that goes away stops the engine work.

The long requests ask for 1000 tokens with `ignore_eos`, minutes of work on this machine; the
engine's `running_sequences` and the server's in-flight gauge must drop to 0 within seconds of the
client leaving, which only happens if the server cancelled the generation.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

CANCEL_DEADLINE_S = 15.0


def long_chat(model: str, **fields: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Count to one thousand."}]
    return {"model": model, "messages": messages, "max_tokens": 1000, "ignore_eos": True} | fields


def wait_until(condition: Callable[[], bool], timeout_s: float = CANCEL_DEADLINE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def first_content_chunk(lines: Any) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data: {"):
            chunk = json.loads(line[len("data: ") :])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                return chunk
    raise AssertionError("the stream ended before any content")


def is_idle(read_metric: Any) -> bool:
    return (
        read_metric("ponder_requests_in_flight") == 0 and read_metric("ponder_cache_running_sequences") == 0
    )


def test_429_beyond_limit_then_disconnects_cancel(live_server: Any, read_metric: Any) -> None:
    assert live_server.max_concurrent_requests == 2
    # httpx closes the connection when a line iterator is garbage-collected: keep them alive.
    open_lines = []
    with contextlib.ExitStack() as streams:
        for _ in range(live_server.max_concurrent_requests):
            client = streams.enter_context(httpx.Client(headers=live_server.headers, timeout=60.0))
            body = long_chat(live_server.model, stream=True)
            response = streams.enter_context(
                client.stream("POST", f"{live_server.base_url}/v1/chat/completions", json=body)
            )
            open_lines.append(response.iter_lines())
            first_content_chunk(open_lines[-1])
        assert read_metric("ponder_requests_in_flight") == 2
        assert read_metric("ponder_cache_running_sequences") == 2
        refused = httpx.post(
            f"{live_server.base_url}/v1/chat/completions",
            json=long_chat(live_server.model, max_tokens=1),
            headers=live_server.headers,
            timeout=60.0,
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    # Both streams are closed mid-generation: the server must abort them.
    assert wait_until(lambda: is_idle(read_metric)), live_server.log_tail()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_non_stream_disconnect_cancels(live_server: Any, read_metric: Any, path: str) -> None:
    body = long_chat(live_server.model)
    if path == "/v1/completions":
        body = {key: value for key, value in body.items() if key != "messages"} | {
            "prompt": "Once upon a time"
        }
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_server.base_url}{path}",
            json=body,
            headers=live_server.headers,
            timeout=httpx.Timeout(60.0, read=3.0),
        )
    assert wait_until(lambda: is_idle(read_metric)), live_server.log_tail()
