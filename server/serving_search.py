"""Chat completions that think: a request's `search` field (or `reasoning_effort`) runs a
search strategy over the engine instead of sampling once.

The reply is the chosen path; the top-level `search` object says what the search did; with
`stream: true` the steps the best path commits to arrive as `delta.reasoning_content` while it
searches, then the answer as `delta.content`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.models import recommended_aggregate
from search.api import ModelDefaults, SearchRequest, resolve_search
from search.config import SearchConfig
from search.context import SearchContext
from search.result import SearchResult
from search.runner import run_search
from server.errors import invalid_request
from server.generation import await_unless_disconnected
from server.protocol import ChatCompletionRequest
from server.responses import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    DeltaMessage,
    PromptTokensDetails,
    UsageInfo,
    new_id,
    now_s,
)
from server.sampling import request_cache_salt, resolve_max_tokens
from server.search_services import prm_id_for
from server.serving_chat import to_engine_messages
from server.state import ServerState
from server.streaming import sse_response

NO_SEARCH_EFFORTS = {"none", "minimal"}


def search_config(request: ChatCompletionRequest, state: ServerState) -> SearchConfig | None:
    """The search a request asks for, None for plain sampling, or a 400 naming the bad knob."""
    effort = None if request.reasoning_effort in NO_SEARCH_EFFORTS else request.reasoning_effort
    try:
        return resolve_search(request.search, effort, state.search.limits, _model_defaults(request, state))
    except ValueError as exc:
        raise invalid_request(str(exc), _param_of(str(exc)), "invalid_value") from None


def _model_defaults(request: ChatCompletionRequest, state: ServerState) -> ModelDefaults:
    """The request's temperature, else the policy's recommended one; the policy's reply length;
    the aggregation recommended for the PRM that guides it."""
    engine = state.pool.engines.get(request.model)
    card = None if engine is None else engine.card
    temperature = request.temperature
    if temperature is None and card is not None:
        temperature = card.sampling_defaults.get("temperature")
    named = (request.search or {}).get("prm")
    prm_id = prm_id_for(request.model, named if isinstance(named, str) else None)
    return ModelDefaults(
        temperature=temperature,
        reply_tokens=None if card is None else card.reply_tokens,
        aggregate=None if prm_id is None else recommended_aggregate(prm_id),
    )


def _param_of(message: str) -> str:
    head = message.split(":")[0].split(" ")[0]
    if head.startswith("search.") and head.removeprefix("search.") in SearchRequest.model_fields:
        return head
    return "reasoning_effort" if message.startswith("reasoning_effort") else "search"


async def create_search_completion(
    request: ChatCompletionRequest, state: ServerState, http_request: Request, config: SearchConfig
) -> ChatCompletionResponse | StreamingResponse:
    ctx, prompt_ids = await _prepare(request, state, config)
    ctx.cache_salt = request_cache_salt(request, state.settings, http_request)
    if request.is_streaming:
        return sse_response(_search_chunks(ctx, prompt_ids, config, request, state), state.gate.admit())
    with state.gate.admit():
        work = run_search(ctx, prompt_ids, config)
        result = await await_unless_disconnected(work, http_request, state.settings.request_timeout_s)
    return ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now_s(),
        model=request.model,
        choices=[
            ChatChoice(
                index=0,
                message=AssistantMessage(content=result.text, reasoning_content=_reasoning(result)),
                finish_reason=result.finish_reason,
            )
        ],
        usage=_usage(result),
        search=_summary(result, state, request.model, config),
    )


async def _prepare(
    request: ChatCompletionRequest, state: ServerState, config: SearchConfig
) -> tuple[SearchContext, list[int]]:
    """Every check before any work: one choice, the context, the PRM and verifier asked for."""
    if (request.n or 1) != 1:
        raise invalid_request("A search returns one choice: 'n' must be 1 (use search.n).", "n")
    engine = state.pool.engine_for(request.model)
    messages = to_engine_messages(request.messages)
    prompt_ids = engine.apply_chat_template(messages)
    max_context, max_tokens = engine.card.max_context, state.settings.max_tokens
    resolve_max_tokens(len(prompt_ids), request, max_context, max_tokens, "messages")
    user_message = next((m.content for m in reversed(messages) if m.role == "user"), "")
    prm = await state.search.prm_for(request.model, config.prm_model) if config.prm else None
    verifier = state.search.verifier_for(request.model, user_message) if config.verifier else None
    return SearchContext(engine, user_message, prm=prm, verifier=verifier), prompt_ids


async def _search_chunks(
    ctx: SearchContext,
    prompt_ids: list[int],
    config: SearchConfig,
    request: ChatCompletionRequest,
    state: ServerState,
) -> AsyncIterator[ChatCompletionChunk]:
    chunk_id, created = new_id("chatcmpl"), now_s()

    def chunk(delta: DeltaMessage, finish: str | None = None, **extra: Any) -> ChatCompletionChunk:
        choice = ChatChunkChoice(index=0, delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=chunk_id, created=created, model=request.model, choices=[choice], **extra
        )

    steps: asyncio.Queue[str | None] = asyncio.Queue()
    ctx.on_commit = lambda text, score: steps.put_nowait(_step_line(text, score))
    task = asyncio.ensure_future(run_search(ctx, prompt_ids, config))
    task.add_done_callback(lambda _: steps.put_nowait(None))
    try:
        yield chunk(DeltaMessage(role="assistant", content=""))
        while (line := await steps.get()) is not None:
            yield chunk(DeltaMessage(reasoning_content=line))
        result = task.result()
        yield chunk(DeltaMessage(content=result.text))
        summary = _summary(result, state, request.model, config)
        yield chunk(DeltaMessage(), result.finish_reason, search=summary)
        if request.includes_stream_usage:
            yield ChatCompletionChunk(
                id=chunk_id, created=created, model=request.model, choices=[], usage=_usage(result)
            )
    finally:  # a client that goes away stops the search and frees its cache references
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _step_line(text: str, score: float | None) -> str:
    return f"{text.rstrip()}" + (f"  [prm {score:.2f}]" if score is not None else "") + "\n"


def _reasoning(result: SearchResult) -> str:
    return "".join(_step_line(text, score) for text, score in zip(result.steps, _scores(result), strict=True))


def _scores(result: SearchResult) -> list[float | None]:
    scores: list[float | None] = list(result.step_scores)
    return scores + [None] * (len(result.steps) - len(scores))


def _usage(result: SearchResult) -> UsageInfo:
    """Every token of every branch: all prompts the engine was given, all tokens it generated."""
    stats = result.stats
    prompt = stats.num_prompt_tokens_computed + stats.num_prompt_tokens_reused
    return UsageInfo(
        prompt_tokens=prompt,
        completion_tokens=stats.num_tokens_generated,
        total_tokens=prompt + stats.num_tokens_generated,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=stats.num_prompt_tokens_reused),
    )


def _summary(result: SearchResult, state: ServerState, model: str, config: SearchConfig) -> dict[str, Any]:
    stats = result.stats
    summary: dict[str, Any] = {
        "strategy": result.strategy or config.strategy,
        "temperature": config.temperature,
        "aggregate": config.aggregate,
        "prm": prm_id_for(model, config.prm_model) if config.prm else None,
        "nodes_expanded": stats.num_nodes_expanded,
        "tokens_generated": stats.num_tokens_generated,
        "prompt_tokens_computed": stats.num_prompt_tokens_computed,
        "prompt_tokens_reused": stats.num_prompt_tokens_reused,
        "prm_calls": stats.num_prm_calls,
        "elapsed_s": round(stats.elapsed_s, 4),
        "step_scores": result.step_scores,
        "score": result.score,
        "is_verified": result.is_verified,
    }
    if config.trace:
        summary["trace_id"] = state.search.traces.save(model, summary["strategy"], result.trace())
    return summary
