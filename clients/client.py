"""A small typed client for a ponder server (or any OpenAI-compatible one), over httpx.

Why keep it beside the `openai` package, which works against ponder too (`extra_body={"search":
...}`)? It reads what `openai` leaves untyped, without `extra_body` or `model_extra`: streamed
`reasoning_content`, `search_event` and the `search` summary, traces and their viewer links. It
retries 429 and 503 with backoff, has an async twin (`clients.async_client.AsyncPonderClient`), and needs only
httpx, which the server installs anyway: the CLI stays light.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from clients.common import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_S,
    SSE_DONE,
    ChatResult,
    Messages,
    PonderAPIError,
    RetryPolicy,
    StreamDelta,
    chat_body,
    chat_result,
    sse_chunk,
    stream_deltas,
    to_messages,
    viewer_url,
)

__all__ = ["DEFAULT_BASE_URL", "ChatResult", "PonderAPIError", "PonderClient", "RetryPolicy", "to_messages"]


class PonderClient:
    """`chat`, `stream`, `stream_chat`, `models`, `trace` and `traces` against `base_url`; use as a
    context manager or `close()`. Requests refused with 429/503 are retried per `retry`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> PonderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def models(self) -> list[dict[str, Any]]:
        """The served models (`id`, `kind` "generate" or "reward", `max_model_len`)."""
        data: list[dict[str, Any]] = self._request("GET", "/v1/models").json()["data"]
        return data

    def default_model(self) -> str:
        """The first generative model the server lists."""
        for model in self.models():
            if model.get("kind", "generate") == "generate":
                return str(model["id"])
        raise PonderAPIError(404, "the server lists no generative model")

    def chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> ChatResult:
        """One chat completion; `params` are OpenAI fields (max_tokens, temperature, n, seed, stop...)."""
        body = chat_body(model or self.default_model(), messages, search, params, is_streaming=False)
        return chat_result(self._request("POST", "/v1/chat/completions", json=body).json())

    def stream(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> Iterator[StreamDelta]:
        """Choice 0's events as they arrive: a search's tree events (`search_event`) and its best
        path so far (`reasoning_content`, see `best_path_steps`), the answer's text, then the
        finish reason with the `search` summary; raises `PonderAPIError` on an error event."""
        body = chat_body(model or self.default_model(), messages, search, params, is_streaming=True)
        with self._stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                chunk = sse_chunk(line)
                if chunk == SSE_DONE:
                    return
                if isinstance(chunk, dict):
                    yield from stream_deltas(chunk, response.status_code)

    def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> Iterator[str]:
        """The text of choice 0 as it is generated (reasoning left out: see `stream`)."""
        for delta in self.stream(messages, model=model, search=search, **params):
            if delta.content:
                yield delta.content

    def trace(self, trace_id: str) -> dict[str, Any]:
        """A recorded search: prompt, settings, replies, answer and its tree (`GET /v1/traces/{id}`)."""
        trace: dict[str, Any] = self._request("GET", f"/v1/traces/{trace_id}").json()
        return trace

    def traces(
        self,
        *,
        model: str | None = None,
        since: float | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> dict[str, Any]:
        """One page of trace summaries, newest first; pass its `next` as `after` for the next."""
        params = {"model": model, "since": since, "limit": limit, "after": after}
        page: dict[str, Any] = self._request(
            "GET", "/v1/traces", params={k: v for k, v in params.items() if v is not None}
        ).json()
        return page

    def viewer_url(self, trace_id: str, with_key: bool = True) -> str:
        """The trace viewer's page for `trace_id` (the key rides in the fragment: see routes_viewer)."""
        return viewer_url(self.base_url, trace_id, self.api_key if with_key else None)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        num_retries = 0
        while True:
            response = self._http.request(method, path, **kwargs)
            if response.is_success:
                return response
            if not self.retry.should_retry(response.status_code, num_retries):
                raise PonderAPIError.from_body(response.status_code, response.text)
            time.sleep(self.retry.delay_s(num_retries, response.headers.get("retry-after")))
            num_retries += 1

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        num_retries = 0
        while True:
            response = self._http.send(self._http.build_request(method, path, **kwargs), stream=True)
            if response.is_success:
                break
            text = response.read().decode(errors="replace")
            response.close()
            if not self.retry.should_retry(response.status_code, num_retries):
                raise PonderAPIError.from_body(response.status_code, text)
            time.sleep(self.retry.delay_s(num_retries, response.headers.get("retry-after")))
            num_retries += 1
        try:
            yield response
        finally:
            response.close()
