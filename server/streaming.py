"""Server-sent events: `data: {json}\\n\\n` per chunk, then `data: [DONE]\\n\\n`.

An error after the stream started cannot change the HTTP status, so it is sent as one
`data: {"error": {...}}` event (what OpenAI does) before `[DONE]`. The admission slot and the
engine lease are held until the stream ends, however it ends: finished, failed, closed by a
disconnected client (even one that left before the first chunk), or cut off when shutdown's
drain time is over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from server.errors import error_envelope, to_api_error
from server.leases import Releasable
from server.limits import Admission

DONE_EVENT = "data: [DONE]\n\n"
SSE_MEDIA_TYPE = "text/event-stream"

T = TypeVar("T")


async def close_stream(stream: AsyncIterator[object]) -> None:
    """Close an async generator now; the Engine protocol promises only `AsyncIterator`."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def sse_event(chunk: BaseModel) -> str:
    return f"data: {chunk.model_dump_json()}\n\n"


async def encode_events(
    chunks: AsyncIterator[BaseModel], admission: Admission, *holds: Releasable
) -> AsyncGenerator[str, None]:
    """SSE text for `chunks`; releases `admission` and `holds` and closes `chunks` on every exit
    path."""
    try:
        try:
            async for chunk in until_drained(chunks, admission):
                yield sse_event(chunk)
        except Exception as exc:  # any failure mid-stream, mapped (and logged) in one place
            yield f"data: {json.dumps(error_envelope(to_api_error(exc)))}\n\n"
        yield DONE_EVENT
    finally:
        await close_stream(chunks)
        _release((admission, *holds))


async def until_drained(chunks: AsyncIterator[T], admission: Admission) -> AsyncIterator[T]:
    """`chunks`, until shutdown's drain time is over: then the pending chunk is cancelled (which
    closes the engine work behind it) and the admission's drain error is raised.

    Each chunk is awaited in a task of its own, so it can be raced against the drain; however
    this generator ends (a disconnect cancels it), that task is cancelled and awaited first, so
    `chunks` is never closed while it runs."""
    expired = asyncio.ensure_future(admission.drain_expired.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(chunks))
            await asyncio.wait({step, expired}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                raise admission.drain_error()
            try:
                chunk = step.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        pending = [task for task in (step, expired) if task is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def sse_response(
    chunks: AsyncIterator[BaseModel], admission: Admission, *holds: Releasable
) -> StreamingResponse:
    """A streaming response whose generator is closed, and `admission` and `holds` (the engine
    lease) released, even if the server stops iterating it early.

    Starlette may stop iterating on a disconnect while the generator waits at a `yield`, or
    before it ever started (then its `finally` never runs); the background task closes it and
    releases the holds right away instead of whenever it is garbage-collected.
    """
    events = encode_events(chunks, admission, *holds)

    async def finish() -> None:
        try:
            await events.aclose()
        finally:
            _release((admission, *holds))

    return StreamingResponse(
        events,
        media_type=SSE_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(finish),
    )


def _release(holds: tuple[Releasable, ...]) -> None:
    for hold in holds:  # each release is idempotent: the generator and `finish` both call it
        hold.release()
