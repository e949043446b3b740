"""POST /v1/chat/completions: messages -> chat template -> engine -> OpenAI chat objects.

The pipeline checks everything (limits, model, context) before it admits the request and calls
the engine, so a rejected request leaves no trace in the engine or its cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import partial

from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.protocol import ChatMessage, Engine, StreamDelta
from server.generation import GenerationJob, UsageTally, run_job, start_job, stream_job
from server.logprobs import chat_logprobs
from server.metrics import ServerMetrics
from server.protocol import ChatCompletionRequest, ChatMessageIn
from server.responses import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    DeltaMessage,
    new_id,
    now_s,
    system_fingerprint,
)
from server.sampling import (
    check_request_limits,
    request_cache_salt,
    resolve_max_tokens,
    to_sampling_params,
)
from server.state import ServerState
from server.streaming import sse_response

# OpenAI's "developer" role is the newer name of "system"; chat templates only know "system".
TEMPLATE_ROLES = {"developer": "system"}


def to_engine_messages(messages: Sequence[ChatMessageIn]) -> list[ChatMessage]:
    return [ChatMessage(role=TEMPLATE_ROLES.get(m.role, m.role), content=m.text()) for m in messages]


def num_top_logprobs(request: ChatCompletionRequest) -> int | None:
    """None when no logprobs were asked for (the request model refuses `top_logprobs` alone)."""
    if not request.logprobs:
        return None
    return request.top_logprobs or 0


def prepare_chat(
    request: ChatCompletionRequest, state: ServerState, engine: Engine, cache_salt: str | None = None
) -> GenerationJob:
    """Every check and the prompt; raises `ApiError` for anything the request cannot have."""
    settings = state.settings
    check_request_limits(request, settings.max_n, settings.max_tokens)
    num_top = num_top_logprobs(request)
    prompt_ids = engine.apply_chat_template(to_engine_messages(request.messages))
    max_new_tokens = resolve_max_tokens(
        len(prompt_ids), request, engine.card.max_context, settings.max_tokens, "messages"
    )
    params = to_sampling_params(request, max_new_tokens, num_top, engine.card.sampling_defaults, cache_salt)
    return GenerationJob(
        request.model, engine, list(prompt_ids), params, settings.request_timeout_s, settings.queue_timeout_s
    )


async def create_chat_completion(
    request: ChatCompletionRequest, state: ServerState, http_request: Request
) -> ChatCompletionResponse | StreamingResponse:
    salt = request_cache_salt(request, state.settings, http_request)
    started = await start_job(
        state, request.model, request.is_streaming, salt, partial(prepare_chat, request, state)
    )
    job = started.job
    if started.stream is not None:
        chunks = _chunks(job, request, state.metrics, started.stream)
        return sse_response(chunks, started.admission, started.lease)
    with started.admission, started.lease:
        choices, usage = await run_job(job, state.metrics, http_request, started.admission)
    return ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now_s(),
        model=request.model,
        system_fingerprint=system_fingerprint(job.engine.card),
        choices=[
            ChatChoice(
                index=choice.index,
                message=AssistantMessage(content=choice.text),
                logprobs=chat_logprobs(choice.logprobs, job.params.top_logprobs),
                finish_reason=choice.finish_reason,
            )
            for choice in choices
        ],
        usage=usage,
    )


async def _chunks(
    job: GenerationJob,
    request: ChatCompletionRequest,
    metrics: ServerMetrics,
    stream: AsyncIterator[StreamDelta],
) -> AsyncIterator[ChatCompletionChunk]:
    """A role chunk per choice, content deltas, a finish chunk per choice, then optional usage."""
    chunk_id, created, fingerprint = new_id("chatcmpl"), now_s(), system_fingerprint(job.engine.card)

    def chunk(choice: ChatChunkChoice) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=chunk_id, created=created, model=job.model, choices=[choice], system_fingerprint=fingerprint
        )

    for index in range(job.params.n):
        role = DeltaMessage(role="assistant", content="")
        yield chunk(ChatChunkChoice(index=index, delta=role, logprobs=None, finish_reason=None))
    tally = UsageTally(len(job.prompt_ids))
    async for delta in stream_job(job, metrics, tally, stream):
        if delta.text or delta.logprobs:
            logprobs = chat_logprobs(delta.logprobs, job.params.top_logprobs)
            content = DeltaMessage(content=delta.text)
            yield chunk(
                ChatChunkChoice(index=delta.index, delta=content, logprobs=logprobs, finish_reason=None)
            )
        if delta.finish_reason is not None:
            yield chunk(
                ChatChunkChoice(index=delta.index, delta=DeltaMessage(), finish_reason=delta.finish_reason)
            )
    if request.includes_stream_usage:
        yield ChatCompletionChunk(
            id=chunk_id,
            created=created,
            model=job.model,
            choices=[],
            usage=tally.usage(),
            system_fingerprint=fingerprint,
        )
