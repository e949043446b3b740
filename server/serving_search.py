"""Chat completions that think: a request's `search` field (or `reasoning_effort`) runs a
search strategy over the engine instead of sampling once.

The reply is the chosen path; the top-level `search` object says what the search did; with
`stream: true` the search is shown live while it runs (`server.search_stream`: its events as
`delta.search_event`, its best path so far as `delta.reasoning_content`), then the answer
arrives as `delta.content`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.protocol import Engine, ModelCard
from engine.search_defaults import search_defaults
from rewards.tasks import get_task
from search.api import SearchRequest, resolve_search
from search.config import SearchConfig
from search.context import SearchContext, Verifier
from search.events import SearchEvent, SearchEvents
from search.result import SearchResult
from server.auth import get_caller
from server.errors import invalid_request
from server.generation import await_unless_disconnected
from server.leases import released_on_error
from server.logprobs import chat_logprobs
from server.metrics import arrival_time
from server.protocol import ChatCompletionRequest
from server.responses import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChoiceLogprobs,
    DeltaMessage,
    PromptTokensDetails,
    UsageInfo,
    new_id,
    now_s,
    system_fingerprint,
)
from server.sampling import check_request_limits, request_cache_salt, resolve_max_tokens
from server.search_metrics import SearchObservation
from server.search_params import refuse_unsearchable, search_params
from server.search_services import prm_id_for, task_verifier
from server.search_stream import live_deltas, step_line
from server.serving_chat import to_engine_messages
from server.state import ServerState
from server.streaming import sse_response
from server.trace_records import TraceRecord, build_record

NO_SEARCH_EFFORTS = {"none", "minimal"}


@dataclass(frozen=True)
class TraceSource:
    """What a trace records beyond the result: who asked what, of which weights, and how the
    task checks a reply (None where it has no verifier)."""

    model: str
    version: str
    owner: str
    messages: tuple[tuple[str, str], ...]
    outcome: Verifier | None


def search_config(request: ChatCompletionRequest, state: ServerState) -> SearchConfig | None:
    """The search a request asks for, None for plain sampling, or a 400 naming the bad knob or
    the OpenAI parameter a search cannot honour."""
    effort = None if request.reasoning_effort in NO_SEARCH_EFFORTS else request.reasoning_effort
    if request.search is None and effort is None:
        return None
    settings = state.settings
    check_request_limits(request, settings.max_n, settings.max_tokens)
    refuse_unsearchable(request)
    card = _card(request, state)
    named = request.search.prm if request.search is not None else None
    prm_id = state.search.guiding_prm(request.model, named if isinstance(named, str) else None)
    defaults = search_defaults(request.model, prm_id, request.temperature, card)
    sampling = card.sampling_defaults if card is not None else {}
    params = search_params(request, prm_id is not None, sampling)
    try:
        config = resolve_search(request.search, effort, state.search.limits, defaults, params)
    except ValueError as exc:
        raise invalid_request(str(exc), _param_of(str(exc)), "invalid_value") from None
    if config is not None:
        state.search.recording.check(config.trace)
    return config


def _card(request: ChatCompletionRequest, state: ServerState) -> ModelCard | None:
    engine = state.pool.engines.get(request.model)
    return None if engine is None else engine.card


def _param_of(message: str) -> str:
    head = message.split(":")[0].split(" ")[0]
    if head.startswith("search.") and head.removeprefix("search.") in SearchRequest.model_fields:
        return head
    return "reasoning_effort" if message.startswith("reasoning_effort") else "search"


async def create_search_completion(
    request: ChatCompletionRequest, state: ServerState, http_request: Request, config: SearchConfig
) -> ChatCompletionResponse | StreamingResponse:
    lease = state.pool.lease(request.model)  # every branch of the search runs on this one engine
    with released_on_error(lease):
        owner = get_caller(http_request).owner
        ctx, prompt_ids, source = await _prepare(request, state, config, lease.engine, owner)
        ctx.cache_salt = request_cache_salt(request, state.settings, http_request)
        admission = state.gate.admit()
    prm = prm_id_for(request.model, config.prm_model) if config.prm else None
    observed = state.metrics.search.observation(request.model, config, prm, arrival_time(http_request.scope))
    if request.is_streaming:
        chunks = _search_chunks(ctx, prompt_ids, config, request, state, source, observed)
        return sse_response(observed.timed_chunks(chunks), admission, lease)
    with admission, lease:
        work = observed.run(ctx, prompt_ids, config)
        result = await await_unless_disconnected(work, http_request, state.settings.request_timeout_s)
    return ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now_s(),
        model=request.model,
        system_fingerprint=system_fingerprint(ctx.engine.card),
        choices=[
            ChatChoice(
                index=0,
                message=AssistantMessage(content=result.text, reasoning_content=_reasoning(result)),
                logprobs=chat_logprobs(result.logprobs, config.logprobs or 0),
                finish_reason=result.finish_reason,
            )
        ],
        usage=_usage(result),
        search=await _summary(result, state, config, source),
    )


async def _prepare(
    request: ChatCompletionRequest, state: ServerState, config: SearchConfig, engine: Engine, owner: str
) -> tuple[SearchContext, list[int], TraceSource]:
    """Every check before any work: one choice, the context, the PRM and verifier asked for;
    and what a trace of the search would record. The PRM scorer is taken once here: a PRM
    swapped meanwhile does not reach this search."""
    messages = to_engine_messages(request.messages)
    prompt_ids = engine.apply_chat_template(messages)
    max_context, max_tokens = engine.card.max_context, state.settings.max_tokens
    resolve_max_tokens(len(prompt_ids), request, max_context, max_tokens, "messages")
    user_message = next((m.content for m in reversed(messages) if m.role == "user"), "")
    prm = await state.search.prm_for(request.model, config.prm_model) if config.prm else None
    task = get_task(config.task)
    verifier = state.search.verifier_for(task, user_message) if config.verifier else None
    source = TraceSource(
        model=request.model,
        version=engine.card.version,
        owner=owner,
        messages=tuple((m.role, m.content) for m in messages),
        outcome=task_verifier(task, user_message),
    )
    ctx = SearchContext(engine, user_message, prm=prm, verifier=verifier, task=task)
    return ctx, prompt_ids, source


async def _search_chunks(
    ctx: SearchContext,
    prompt_ids: list[int],
    config: SearchConfig,
    request: ChatCompletionRequest,
    state: ServerState,
    source: TraceSource,
    observed: SearchObservation,
) -> AsyncIterator[ChatCompletionChunk]:
    chunk_id, created, fingerprint = new_id("chatcmpl"), now_s(), system_fingerprint(ctx.engine.card)

    def chunk(
        delta: DeltaMessage | None,
        finish: str | None = None,
        logprobs: ChoiceLogprobs | None = None,
        **extra: Any,
    ) -> ChatCompletionChunk:
        choice = (
            ChatChunkChoice(index=0, delta=delta, logprobs=logprobs, finish_reason=finish) if delta else None
        )
        choices = [] if choice is None else [choice]
        return ChatCompletionChunk(
            id=chunk_id,
            created=created,
            model=request.model,
            choices=choices,
            system_fingerprint=fingerprint,
            **extra,
        )

    events: asyncio.Queue[SearchEvent | None] = asyncio.Queue()
    ctx.events = SearchEvents(events.put_nowait)
    task = asyncio.ensure_future(observed.run(ctx, prompt_ids, config))
    task.add_done_callback(lambda _: events.put_nowait(None))
    try:
        yield chunk(DeltaMessage(role="assistant", content=""))
        async with contextlib.aclosing(live_deltas(events, ctx)) as deltas:
            async for delta in deltas:
                yield chunk(delta)
        result = task.result()
        logprobs = chat_logprobs(result.logprobs, config.logprobs or 0)
        yield chunk(DeltaMessage(content=result.text), logprobs=logprobs)
        summary = await _summary(result, state, config, source)
        yield chunk(DeltaMessage(), result.finish_reason, search=summary)
        if request.includes_stream_usage:
            yield chunk(None, usage=_usage(result))
    finally:  # a client that goes away stops the search and frees its cache references
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _reasoning(result: SearchResult) -> str:
    return "".join(step_line(text, score) for text, score in zip(result.steps, _scores(result), strict=True))


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


async def _summary(
    result: SearchResult, state: ServerState, config: SearchConfig, source: TraceSource
) -> dict[str, Any]:
    """The response's `search` object; with `trace_id` when the search is recorded."""
    stats, model = result.stats, source.model
    summary: dict[str, Any] = {
        "strategy": result.strategy or config.strategy,
        "temperature": config.temperature,
        "aggregate": config.aggregate,
        "prm": state.search.guiding_prm(model, config.prm_model) if config.prm else None,
        "task": config.task,
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
    if state.search.recording.is_recorded(config.trace):
        summary["trace_id"] = await _record(result, state, config, source)
    return summary


async def _record(result: SearchResult, state: ServerState, config: SearchConfig, source: TraceSource) -> str:
    """Build the record (it walks the whole tree and verifies every reply) and save it, both
    off the event loop."""

    def build() -> TraceRecord:
        return build_record(
            result,
            config,
            model=source.model,
            version=source.version,
            owner=source.owner,
            messages=source.messages,
            outcome=source.outcome,
        )

    return await state.search.recorder.save(await asyncio.to_thread(build))
