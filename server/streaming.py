"""Server-sent events: `data: {json}\\n\\n` per chunk, then `data: [DONE]\\n\\n`.

An error after the stream started cannot change the HTTP status, so it is sent as one
`data: {"error": {...}}` event (what OpenAI does) before `[DONE]`. The admission slot and the
engine lease are held until the stream ends, however it ends: finished, failed, or closed by a
disconnected client (even one that left before the first chunk).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator

from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from server.errors import error_envelope, to_api_error
from server.leases import Releasable

DONE_EVENT = "data: [DONE]\n\n"
SSE_MEDIA_TYPE = "text/event-stream"


async def close_stream(stream: AsyncIterator[object]) -> None:
    """Close an async generator now; the Engine protocol promises only `AsyncIterator`."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def sse_event(chunk: BaseModel) -> str:
    return f"data: {chunk.model_dump_json()}\n\n"


async def encode_events(chunks: AsyncIterator[BaseModel], *holds: Releasable) -> AsyncGenerator[str, None]:
    """SSE text for `chunks`; releases `holds` and closes `chunks` on every exit path."""
    try:
        try:
            async for chunk in chunks:
                yield sse_event(chunk)
        except Exception as exc:  # any failure mid-stream, mapped (and logged) in one place
            yield f"data: {json.dumps(error_envelope(to_api_error(exc)))}\n\n"
        yield DONE_EVENT
    finally:
        await close_stream(chunks)
        _release(holds)


def sse_response(chunks: AsyncIterator[BaseModel], *holds: Releasable) -> StreamingResponse:
    """A streaming response whose generator is closed, and `holds` (the admission slot, the
    engine lease) released, even if the server stops iterating it early.

    Starlette may stop iterating on a disconnect while the generator waits at a `yield`, or
    before it ever started (then its `finally` never runs); the background task closes it and
    releases the holds right away instead of whenever it is garbage-collected.
    """
    events = encode_events(chunks, *holds)

    async def finish() -> None:
        try:
            await events.aclose()
        finally:
            _release(holds)

    return StreamingResponse(
        events,
        media_type=SSE_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(finish),
    )


def _release(holds: tuple[Releasable, ...]) -> None:
    for hold in holds:  # each release is idempotent: the generator and `finish` both call it
        hold.release()
