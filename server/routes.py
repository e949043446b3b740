"""HTTP routes: thin adapters from FastAPI to the serving functions and the pool.

Auth, body limits and request metrics are middleware (see `server.app`); validation errors and
`ApiError`s become OpenAI envelopes in `server.errors`. Handlers here only pick the function.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import StreamingResponse

from server.errors import ApiError, error_response
from server.protocol import ChatCompletionRequest, CompletionRequest
from server.responses import ChatCompletionResponse, CompletionResponse, ModelList
from server.serving_chat import create_chat_completion
from server.serving_completions import create_completion
from server.serving_search import create_search_completion, search_config
from server.state import StateDep

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None, responses={200: {"model": ChatCompletionResponse}})
async def chat_completions(
    body: ChatCompletionRequest, state: StateDep, request: Request
) -> ChatCompletionResponse | StreamingResponse:
    config = search_config(body, state)
    if config is not None:
        return await create_search_completion(body, state, request, config)
    return await create_chat_completion(body, state, request)


@router.post("/v1/completions", response_model=None, responses={200: {"model": CompletionResponse}})
async def completions(
    body: CompletionRequest, state: StateDep, request: Request
) -> CompletionResponse | StreamingResponse:
    return await create_completion(body, state, request)


@router.get("/v1/models")
async def list_models(state: StateDep) -> ModelList:
    return ModelList(data=state.pool.model_objects())


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about the models (that is /ready)."""
    return {"status": "ok"}


@router.get("/ready", response_model=None)
async def ready(state: StateDep) -> dict[str, object] | JSONResponse:
    """Readiness: 200 once every engine has started, 503 (OpenAI envelope) until then."""
    pool = state.pool
    if pool.is_ready:
        return {"status": "ready", "models": list(pool.plan.model_ids)}
    message = pool.failure or f"loading models: {list(pool.plan.generate_ids)}"
    return error_response(ApiError(503, message, "service_unavailable_error", None, "not_ready"))


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
