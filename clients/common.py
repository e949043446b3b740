"""What `PonderClient` and `AsyncPonderClient` share, all pure (no I/O): the error, the results,
request bodies, SSE parsing, the retry policy, reading a streamed search's reasoning log and a
trace's chosen path."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 600.0  # generation on a CPU can take minutes
SSE_DATA_PREFIX = "data: "
SSE_DONE = "[DONE]"
BACK_LINE = re.compile(r"^\[back to (?:step (\d+)|the start)\]$")
"""A streamed search's reasoning line saying its best path switched branch, keeping k steps."""
SCORE_SUFFIX = re.compile(r"  \[prm \d+\.\d\d\]$")
RETRY_STATUSES = frozenset({429, 503})
"""Refusals before any work (too many requests, model loading): safe to send again."""

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

    @classmethod
    def from_body(cls, status: int, text: str) -> PonderAPIError:
        try:
            payload: Any = json.loads(text)
        except json.JSONDecodeError:
            payload = text
        return cls.from_payload(status, payload)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429 and 503 answers: exponential backoff with jitter, or the server's
    Retry-After when it sends one (capped at `max_backoff_s`). `max_retries=0` never retries."""

    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def should_retry(self, status: int, num_retries: int) -> bool:
        return status in RETRY_STATUSES and num_retries < self.max_retries

    def delay_s(self, num_retries: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `num_retries + 1`."""
        if retry_after is not None and retry_after.strip().replace(".", "", 1).isdigit():
            return min(self.max_backoff_s, float(retry_after))
        ceiling = min(self.max_backoff_s, self.backoff_s * 2**num_retries)
        return ceiling * (0.5 + random.random() / 2)  # jitter: retrying clients do not move in step


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
    def reasoning(self) -> str | None:
        """Choice 0's `reasoning_content` (a search's steps with their PRM scores), if any."""
        message = self.raw.get("choices", [{}])[0].get("message", {})
        return message.get("reasoning_content")

    @property
    def search(self) -> dict[str, Any] | None:
        """What the server's search did (strategy, tokens, scores, trace id); None without one."""
        summary = self.raw.get("search")
        return summary if isinstance(summary, dict) else None


@dataclass(frozen=True)
class StreamDelta:
    """One streamed event of choice 0: text, reasoning, a search's tree event (`search_event`:
    a node expanded, scored, pruned, a rollout, a heartbeat...), the end (finish reason, and for a
    search its `search` summary), or the final usage."""

    content: str = ""
    reasoning_content: str = ""
    finish_reason: str | None = None
    search: dict[str, Any] | None = None
    usage: Usage | None = None
    search_event: dict[str, Any] | None = None


def best_path_steps(reasoning: str) -> list[str]:
    """The steps a streamed search's reasoning log ends on, scores left out: the log writes the
    best path as it moves, and `[back to step k]` drops all but its first k steps."""
    steps: list[str] = []
    for line in reasoning.splitlines():
        back = BACK_LINE.match(line)
        if back is not None:
            steps = steps[: int(back.group(1) or 0)]
        else:
            steps.append(SCORE_SUFFIX.sub("", line))
    return steps


def to_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare string is one user message."""
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


def chat_body(
    model: str, messages: Messages, search: dict[str, Any] | None, params: dict[str, Any], is_streaming: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": to_messages(messages)}
    body.update({key: value for key, value in params.items() if value is not None})
    if search is not None:
        body["search"] = search  # ponder's test-time search options, passed through untouched
    if is_streaming:
        body["stream"] = True
    return body


def usage_of(payload: dict[str, Any]) -> Usage:
    usage = payload.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), details.get("cached_tokens", 0)
    )


def chat_result(payload: dict[str, Any]) -> ChatResult:
    choices = sorted(payload["choices"], key=lambda choice: choice["index"])
    return ChatResult(
        texts=[choice["message"]["content"] for choice in choices],
        finish_reasons=[choice.get("finish_reason") for choice in choices],
        usage=usage_of(payload),
        raw=payload,
    )


def sse_chunk(line: str) -> dict[str, Any] | str | None:
    """A stream line's JSON object, `SSE_DONE` at the end, None for any other line."""
    if not line.startswith(SSE_DATA_PREFIX):
        return None
    data = line[len(SSE_DATA_PREFIX) :]
    return SSE_DONE if data == SSE_DONE else dict(json.loads(data))


def stream_deltas(chunk: dict[str, Any], status: int) -> list[StreamDelta]:
    """Choice 0's events in one chunk; an error event raises `PonderAPIError`."""
    if "error" in chunk:
        raise PonderAPIError.from_payload(status, chunk)
    deltas = []
    for choice in chunk.get("choices", []):
        if choice.get("index") != 0:
            continue
        delta = choice.get("delta") or {}
        finish = choice.get("finish_reason")
        content, reasoning = delta.get("content") or "", delta.get("reasoning_content") or ""
        event = delta.get("search_event")
        if content or reasoning or finish or event:
            search = chunk.get("search") if finish else None
            deltas.append(StreamDelta(content, reasoning, finish, search, search_event=event))
    if chunk.get("usage") and not chunk.get("choices"):
        deltas.append(StreamDelta(usage=usage_of(chunk)))
    return deltas


def chosen_path(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The node dicts of a trace's chosen path, root excluded (`is_chosen`, set by the server)."""
    path: list[dict[str, Any]] = []
    node = trace["tree"]["tree"]["root"]
    while True:
        node = next((child for child in node["children"] if child.get("is_chosen")), None)
        if node is None:
            return path
        path.append(node)


def viewer_url(base_url: str, trace_id: str, api_key: str | None = None) -> str:
    """The viewer page of a trace; with the key in the fragment, which never reaches the server."""
    url = f"{base_url.rstrip('/')}/traces/{quote(trace_id, safe='')}"
    return f"{url}#key={quote(api_key, safe='')}" if api_key else url
