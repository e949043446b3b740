"""`AsyncPonderClient`: `PonderClient`'s twin for asyncio code (the same methods, awaited), over
httpx's AsyncClient. Both share `clients.common`, so they parse and retry the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    viewer_url,
)


class AsyncPonderClient:
    """`await chat(...)`, `async for delta in stream(...)`, `await trace(id)`...; use with
    `async with` or `await aclose()`. Requests refused with 429/503 are retried per `retry`."""

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
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout_s)

    async def __aenter__(self) -> AsyncPonderClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def models(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = (await self._request("GET", "/v1/models")).json()["data"]
        return data

    async def default_model(self) -> str:
        for model in await self.models():
            if model.get("kind", "generate") == "generate":
                return str(model["id"])
        raise PonderAPIError(404, "the server lists no generative model")

    async def chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> ChatResult:
        body = chat_body(model or await self.default_model(), messages, search, params, is_streaming=False)
        return chat_result((await self._request("POST", "/v1/chat/completions", json=body)).json())

    async def stream(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> AsyncIterator[StreamDelta]:
        """Choice 0's events as they arrive (see `PonderClient.stream`)."""
        body = chat_body(model or await self.default_model(), messages, search, params, is_streaming=True)
        async with self._stream("POST", "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                chunk = sse_chunk(line)
                if chunk == SSE_DONE:
                    return
                if isinstance(chunk, dict):
                    for delta in stream_deltas(chunk, response.status_code):
                        yield delta

    async def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> AsyncIterator[str]:
        async for delta in self.stream(messages, model=model, search=search, **params):
            if delta.content:
                yield delta.content

    async def trace(self, trace_id: str) -> dict[str, Any]:
        trace: dict[str, Any] = (await self._request("GET", f"/v1/traces/{trace_id}")).json()
        return trace

    async def traces(
        self,
        *,
        model: str | None = None,
        since: float | None = None,
        limit: int = 20,
        after: str | None = None,
    ) -> dict[str, Any]:
        params = {"model": model, "since": since, "limit": limit, "after": after}
        kept = {key: value for key, value in params.items() if value is not None}
        page: dict[str, Any] = (await self._request("GET", "/v1/traces", params=kept)).json()
        return page

    def viewer_url(self, trace_id: str, with_key: bool = True) -> str:
        return viewer_url(self.base_url, trace_id, self.api_key if with_key else None)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        num_retries = 0
        while True:
            response = await self._http.request(method, path, **kwargs)
            if response.is_success:
                return response
            if not self.retry.should_retry(response.status_code, num_retries):
                raise PonderAPIError.from_body(response.status_code, response.text)
            await asyncio.sleep(self.retry.delay_s(num_retries, response.headers.get("retry-after")))
            num_retries += 1

    @asynccontextmanager
    async def _stream(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        num_retries = 0
        while True:
            request = self._http.build_request(method, path, **kwargs)
            response = await self._http.send(request, stream=True)
            if response.is_success:
                break
            text = (await response.aread()).decode(errors="replace")
            await response.aclose()
            if not self.retry.should_retry(response.status_code, num_retries):
                raise PonderAPIError.from_body(response.status_code, text)
            await asyncio.sleep(self.retry.delay_s(num_retries, response.headers.get("retry-after")))
            num_retries += 1
        try:
            yield response
        finally:
            await response.aclose()
