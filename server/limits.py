"""Admission limits: how many requests may generate at once (429) and how big a body may be (413),
and how long admitted work may still run once shutdown begins (the drain).

The decisions are pure functions; `AdmissionGate` and `BodySizeLimitMiddleware` only apply them.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import ApiError, body_too_large, error_response, shutting_down, too_many_requests


def can_admit(num_in_flight: int, limit: int) -> bool:
    return num_in_flight < limit


def is_body_too_large(num_bytes: int, limit: int) -> bool:
    return num_bytes > limit


class Admission:
    """One admitted request's slot; `release` is idempotent so every exit path may call it."""

    def __init__(self, gate: AdmissionGate) -> None:
        self._gate: AdmissionGate | None = gate
        self._drain = gate  # kept after release: the drain is the gate's, not the slot's
        self.admitted_at = time.monotonic()  # where queue time and time to first token start

    @property
    def drain_expired(self) -> asyncio.Event:
        """Set when shutdown's drain time is over: streams still running must end now."""
        return self._drain.drain_expired

    def drain_error(self) -> ApiError:
        """What a request still running when `drain_expired` is set ends with."""
        return shutting_down(self._drain.drain_timeout_s or 0.0)

    def release(self) -> None:
        if self._gate is not None:
            self._gate.release()
            self._gate = None

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class AdmissionGate:
    """Counts requests that hold engine work; refuses new ones beyond `limit` with a 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.num_in_flight = 0
        self.drain_timeout_s: float | None = None  # set when shutdown begins
        self.drain_expired = asyncio.Event()  # set `drain_timeout_s` after shutdown began

    def admit(self) -> Admission:
        """A slot for one request, or `ApiError(429)`; the event loop is single-threaded: no lock."""
        if self.drain_timeout_s is not None:
            raise shutting_down(self.drain_timeout_s)
        if not can_admit(self.num_in_flight, self.limit):
            raise too_many_requests(self.limit)
        self.num_in_flight += 1
        return Admission(self)

    def begin_drain(self, timeout_s: float) -> None:
        """Shutdown has begun: refuse new work; admitted work may run `timeout_s` more seconds."""
        self.drain_timeout_s = timeout_s
        asyncio.get_running_loop().call_later(timeout_s, self.drain_expired.set)

    def release(self) -> None:
        """Give back one slot; called through `Admission.release`, which makes it happen once."""
        self.num_in_flight -= 1


class BodySizeLimitMiddleware:
    """Answers 413 before the app sees a body over `limit` bytes, declared or chunked.

    The body is read here (requests are small JSON documents that FastAPI would read whole anyway)
    and replayed to the app; later `receive` calls pass through so disconnects still arrive.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and is_body_too_large(declared, self.limit):
            await error_response(body_too_large(declared, self.limit))(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if is_body_too_large(len(body), self.limit):
                await error_response(body_too_large(None, self.limit))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    is_sent = False

    async def replay() -> Message:
        nonlocal is_sent
        if not is_sent:
            is_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
