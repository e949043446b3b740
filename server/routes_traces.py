"""`/v1/traces`: list, read and delete recorded searches.

A caller sees the traces its key made and anonymous ones; the admin key sees all. A trace the
caller may not read answers 404 exactly like a missing one, so ids reveal nothing. The store is
SQLite on disk, so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from server.auth import Caller, CallerDep
from server.errors import ApiError, invalid_request
from server.state import StateDep
from server.trace_records import TraceRecord
from server.trace_store import TraceStore

MAX_PAGE = 100  # traces per page of GET /v1/traces
DEFAULT_PAGE = 20

router = APIRouter()


def not_found(trace_id: str) -> ApiError:
    return ApiError(404, f"No trace with id '{trace_id}'.", param="trace_id", code="trace_not_found")


async def readable(store: TraceStore, trace_id: str, caller: Caller) -> TraceRecord:
    """The trace, or a 404 when it is absent or not the caller's to read."""
    record = await asyncio.to_thread(store.load, trace_id)
    if record is None or not caller.may_read(record.owner):
        raise not_found(trace_id)
    return record


@router.get("/v1/traces")
async def list_traces(
    state: StateDep,
    caller: CallerDep,
    model: str | None = None,
    since: Annotated[float | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    after: str | None = None,
) -> dict[str, Any]:
    """One page of trace summaries (no trees), newest first; `next` continues it via `after`."""
    owner = None if caller.is_admin else caller.owner
    store = state.search.traces
    try:
        records, cursor = await asyncio.to_thread(store.list, model, since, limit, after, owner)
    except ValueError as exc:
        raise invalid_request(str(exc), "after", "invalid_value") from None
    data = [record.to_json(with_tree=False) for record in records]
    return {"object": "list", "data": data, "next": cursor}


@router.get("/v1/traces/{trace_id}")
async def get_trace(trace_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    """The whole record of a recorded search, its tree included."""
    return (await readable(state.search.traces, trace_id, caller)).to_json()


@router.delete("/v1/traces/{trace_id}")
async def delete_trace(trace_id: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    store = state.search.traces
    await readable(store, trace_id, caller)
    if not await asyncio.to_thread(store.delete, trace_id):
        raise not_found(trace_id)  # deleted by another request meanwhile
    return {"id": trace_id, "object": "search.trace.deleted", "deleted": True}
