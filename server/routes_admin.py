"""Admin routes: hot-swap to the published version now, or roll back to the one before.

Both need the admin key (`AdminDep`: 401 without a key, 403 with another key). A candidate that
is refused answers 409 with the reason; the version that was serving keeps serving.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from engine.versions import VersionError
from server.auth import AdminDep
from server.errors import ApiError, invalid_request, model_not_found, not_ready
from server.hot_swap import SwapOutcome
from server.state import ServerState, StateDep

admin_router = APIRouter(prefix="/v1/admin")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    """One versioned model to reload; unset: every served versioned model."""


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str


class SwapResult(BaseModel):
    model: str
    version: str | None
    previous: str | None
    swapped: bool
    error: str | None = None


class SwapResults(BaseModel):
    object: str = "list"
    data: list[SwapResult]


@admin_router.post("/reload")
async def reload(state: StateDep, caller: AdminDep, body: ReloadRequest | None = None) -> SwapResults:
    """Serve each model's CURRENT version now; 409 naming why if any candidate is refused."""
    _require_ready(state)
    model_ids = [_versioned_model(state, body.model)] if body and body.model else state.swapper.model_ids
    return _results(await state.swapper.reload(model_ids))


@admin_router.post("/rollback")
async def rollback(state: StateDep, caller: AdminDep, body: RollbackRequest) -> SwapResults:
    """Point CURRENT back at the previous version and serve it; 400 when there is none."""
    _require_ready(state)
    model_id = _versioned_model(state, body.model)
    try:
        outcome = await state.swapper.rollback(model_id)
    except VersionError as exc:
        raise invalid_request(str(exc), "model", "nothing_to_roll_back") from None
    return _results([outcome])


def _versioned_model(state: ServerState, model_id: str) -> str:
    """`model_id` if it is served and hot-swaps; else the ApiError saying why not."""
    if model_id not in state.pool.plan.model_ids:
        raise model_not_found(model_id, state.pool.plan.model_ids)
    if model_id not in state.swapper.model_ids:
        raise invalid_request(
            f"The model '{model_id}' is not versioned: it is not served from the version store.",
            "model",
            "model_not_versioned",
        )
    return model_id


def _require_ready(state: ServerState) -> None:
    """Swaps replace started engines: before they have started there is nothing to swap."""
    if not state.pool.is_ready:
        raise not_ready(state.pool.plan.generate_ids[0])


def _results(outcomes: list[SwapOutcome]) -> SwapResults:
    refused = [o.error for o in outcomes if o.error is not None]
    if refused:
        kept = ", ".join(f"{o.previous}" for o in outcomes if o.error is not None)
        message = f"{'; '.join(refused)}. Still serving: {kept}."
        raise ApiError(409, message, "invalid_request_error", None, "version_refused")
    return SwapResults(data=[SwapResult(**asdict(o)) for o in outcomes])
