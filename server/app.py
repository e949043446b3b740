"""The FastAPI app: state, middleware, error handlers, routes, and the engines' lifetime.

Engines start in a background task after the app starts listening, so /health answers and
/ready says 503 while weights load; requests for a loading model get a 503 too. Once they have
started, the same task watches the version store and hot-swaps new versions (`server.hot_swap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI

from engine.versions import VersionStore
from server.auth import ApiKeyMiddleware
from server.errors import install_error_handlers
from server.hot_swap import HotSwapper
from server.limits import AdmissionGate, BodySizeLimitMiddleware
from server.metrics import RequestMetricsMiddleware, ServerMetrics
from server.model_pool import ModelPool, ServePlan, plan_models
from server.model_sources import requested_model_ids
from server.model_versions import ModelVersions
from server.openapi import install_openapi
from server.routes import router
from server.routes_admin import admin_router
from server.routes_score import router as score_router
from server.routes_traces import router as traces_router
from server.routes_viewer import router as viewer_router
from server.search_services import SearchServices
from server.settings import ServerSettings
from server.state import ServerState
from server.trace_recording import TraceRecorder

logger = logging.getLogger("ponder.server")


def build_state(settings: ServerSettings, plan: ServePlan | None = None) -> ServerState:
    """Decide what to serve (raises ValueError for an unknown or missing model, or an unreadable
    file of the operator's own); loads no weights, starts nothing."""
    plan = plan or plan_models(requested_model_ids(settings))
    versions = ModelVersions(VersionStore(Path(settings.model_store)), plan.model_ids)
    pool = ModelPool(
        plan, settings.engine, settings.engine_options(), versions, retire_after_s=settings.request_timeout_s
    )
    gate = AdmissionGate(settings.max_concurrent_requests)
    metrics = ServerMetrics(
        engines=lambda: pool.engines,
        num_in_flight=lambda: gate.num_in_flight,
        model_versions=versions.numbers,
        num_retiring=lambda: len(pool.retiring),
    )
    search = SearchServices.from_settings(settings, plan.reward_ids, versions)
    swapper = HotSwapper(pool, search, versions)
    return ServerState(settings, pool, gate, metrics, search, swapper)


def create_app(settings: ServerSettings, on_engine_failure: Callable[[], None] | None = None) -> FastAPI:
    """An app serving `settings.models`; `on_engine_failure` runs if an engine fails to start."""
    return build_app(build_state(settings), on_engine_failure)


def build_app(state: ServerState, on_engine_failure: Callable[[], None] | None = None) -> FastAPI:
    """The app around a ready-made state; its lifespan starts and closes the pool's engines,
    applies trace retention at startup, and closes the trace store (a WAL checkpoint) last."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starting = asyncio.create_task(_serve(state, on_engine_failure))
        pruning = asyncio.create_task(_enforce_retention(state.search.recorder))
        try:
            yield
        finally:
            starting.cancel()
            await asyncio.gather(starting, pruning, return_exceptions=True)
            await state.pool.close()
            await state.search.close()

    settings = state.settings
    app = FastAPI(title="ponder", version="0.1.0", lifespan=lifespan)
    app.state.ponder = state
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(score_router)
    app.include_router(traces_router)
    app.include_router(viewer_router)
    app.include_router(admin_router)
    install_openapi(app)
    # Added last = outermost: metrics see every response, auth runs before the body is read.
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_request_bytes)
    app.add_middleware(
        ApiKeyMiddleware, api_key=settings.api_key_value(), admin_key=settings.admin_key_value()
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)
    return app


async def _serve(state: ServerState, on_failure: Callable[[], None] | None) -> None:
    """Start the engines, then watch the store for new versions until shutdown."""
    if not await _start_engines(state.pool, on_failure):
        return
    interval_s = state.settings.watch_interval_s
    if interval_s > 0 and state.swapper.model_ids:
        await state.swapper.watch(interval_s)


async def _start_engines(pool: ModelPool, on_failure: Callable[[], None] | None) -> bool:
    try:
        await pool.start()
    except Exception:  # not CancelledError: a shutdown during loading is no failure
        logger.exception("an engine failed to start; the server cannot become ready")
        if on_failure is not None:
            on_failure()
        return False
    return True


async def _enforce_retention(recorder: TraceRecorder) -> None:
    try:
        await recorder.enforce_retention()
    except Exception:  # a broken store must not stop the server: searches still answer
        logger.exception("trace retention failed at startup")
