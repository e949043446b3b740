"""A small typed client for a ponder server (or any OpenAI-compatible one), over httpx.

The `openai` package works against ponder too; this client exists for ponder's own fields
(`search`, later) without `extra_body`, and for a dependency-light CLI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 600.0  # generation on a CPU can take minutes
SSE_DATA_PREFIX = "data: "
SSE_DONE = "[DONE]"

Messages = str | Sequence[dict[str, Any]]


class PonderAPIError(Exception):
    """The server's OpenAI error envelope, as an exception."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    @classmethod
    def from_payload(cls, status: int, payload: Any) -> PonderAPIError:
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return cls(status, f"unexpected error body: {str(payload)[:200]}")
        return cls(status, str(error.get("message", "")), error.get("param"), error.get("code"))


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    """One chat completion: a text and a finish reason per choice, and the request's usage."""

    texts: list[str]
    finish_reasons: list[str | None]
    usage: Usage
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def text(self) -> str:
        return self.texts[0]

    @property
    def search(self) -> dict[str, Any] | None:
        """What the server's search did (strategy, tokens, scores, trace id); None without one."""
        summary = self.raw.get("search")
        return summary if isinstance(summary, dict) else None


def to_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare string is one user message."""
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


def _usage(payload: dict[str, Any]) -> Usage:
    usage = payload.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), details.get("cached_tokens", 0)
    )


class PonderClient:
    """`chat`, `stream_chat` and `models` against `base_url`; use as a context manager or `close()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def __enter__(self) -> PonderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def models(self) -> list[dict[str, Any]]:
        """The served models (`id`, `kind` "generate" or "reward", `max_model_len`)."""
        data: list[dict[str, Any]] = self._checked(self._http.get("/v1/models")).json()["data"]
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
        body = self._chat_body(messages, model, search, params, is_streaming=False)
        payload = self._checked(self._http.post("/v1/chat/completions", json=body)).json()
        choices = sorted(payload["choices"], key=lambda choice: choice["index"])
        return ChatResult(
            texts=[choice["message"]["content"] for choice in choices],
            finish_reasons=[choice.get("finish_reason") for choice in choices],
            usage=_usage(payload),
            raw=payload,
        )

    def stream_chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        search: dict[str, Any] | None = None,
        **params: Any,
    ) -> Iterator[str]:
        """The text of choice 0 as it is generated; raises `PonderAPIError` on an error event."""
        body = self._chat_body(messages, model, search, params, is_streaming=True)
        with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != httpx.codes.OK:
                response.read()
                self._checked(response)
            for chunk in _sse_payloads(response.iter_lines()):
                if "error" in chunk:
                    raise PonderAPIError.from_payload(response.status_code, chunk)
                for choice in chunk.get("choices", []):
                    content = choice.get("delta", {}).get("content")
                    if choice.get("index") == 0 and content:
                        yield content

    def _chat_body(
        self,
        messages: Messages,
        model: str | None,
        search: dict[str, Any] | None,
        params: dict[str, Any],
        is_streaming: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model or self.default_model(), "messages": to_messages(messages)}
        body.update({key: value for key, value in params.items() if value is not None})
        if search is not None:
            body["search"] = search  # ponder's test-time search options, passed through untouched
        if is_streaming:
            body["stream"] = True
        return body

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        try:
            payload = response.json()
        except json.JSONDecodeError:
            payload = response.text
        raise PonderAPIError.from_payload(response.status_code, payload)


def _sse_payloads(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of an SSE stream, up to `data: [DONE]`."""
    for line in lines:
        if not line.startswith(SSE_DATA_PREFIX):
            continue
        data = line[len(SSE_DATA_PREFIX) :]
        if data == SSE_DONE:
            return
        yield json.loads(data)
