"""POST /v1/completions: one prompt (text or token ids) -> engine -> OpenAI `text_completion`s.

Same pipeline as chat, minus the chat template: check, admit, generate, count usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.protocol import Engine, StreamDelta
from server.errors import invalid_request
from server.generation import GenerationJob, UsageTally, run_job, start_job, stream_job
from server.logprobs import completion_logprobs
from server.metrics import ServerMetrics
from server.protocol import CompletionRequest
from server.responses import CompletionChoice, CompletionResponse, new_id, now_s, system_fingerprint
from server.sampling import (
    check_request_limits,
    request_cache_salt,
    resolve_max_tokens,
    to_sampling_params,
)
from server.state import ServerState
from server.streaming import sse_response

NO_SEARCH = (None, "none", "minimal")


def prompt_token_ids(engine: Engine, prompt: str | list[int]) -> list[int]:
    token_ids = engine.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
    if not token_ids:
        raise invalid_request(
            "Invalid value for 'prompt': it encodes to no tokens.", "prompt", "invalid_value"
        )
    return token_ids


def refuse_search(request: CompletionRequest) -> None:
    """Search answers chats (a user message is the problem its PRM and verifier read): a 400
    naming `search` or `reasoning_effort` here, rather than a plain completion that ignores it."""
    asked = {
        "search": request.search is not None,
        "reasoning_effort": request.reasoning_effort not in NO_SEARCH,
    }
    for param, is_asked in asked.items():
        if is_asked:
            raise invalid_request(
                f"'{param}' is supported on /v1/chat/completions only.", param, "unsupported_parameter"
            )


def prepare_completion(
    request: CompletionRequest, state: ServerState, engine: Engine, cache_salt: str | None = None
) -> GenerationJob:
    """Every check and the prompt; raises `ApiError` for anything the request cannot have."""
    settings = state.settings
    check_request_limits(request, settings.max_n, settings.max_tokens)
    refuse_search(request)
    prompt_ids = prompt_token_ids(engine, request.prompt)
    max_new_tokens = resolve_max_tokens(
        len(prompt_ids), request, engine.card.max_context, settings.max_tokens, "prompt"
    )
    defaults = engine.card.sampling_defaults
    params = to_sampling_params(request, max_new_tokens, request.logprobs, defaults, cache_salt)
    return GenerationJob(
        request.model, engine, prompt_ids, params, settings.request_timeout_s, settings.queue_timeout_s
    )


async def create_completion(
    request: CompletionRequest, state: ServerState, http_request: Request
) -> CompletionResponse | StreamingResponse:
    salt = request_cache_salt(request, state.settings, http_request)
    started = await start_job(
        state, request.model, request.is_streaming, salt, partial(prepare_completion, request, state)
    )
    job = started.job
    if started.stream is not None:
        chunks = _chunks(job, request, state.metrics, started.stream)
        return sse_response(chunks, started.admission, started.lease)
    with started.admission, started.lease:
        choices, usage = await run_job(job, state.metrics, http_request, started.admission)
    return CompletionResponse(
        id=new_id("cmpl"),
        created=now_s(),
        model=request.model,
        system_fingerprint=system_fingerprint(job.engine.card),
        choices=[
            CompletionChoice(
                index=choice.index,
                text=choice.text,
                logprobs=completion_logprobs(choice.logprobs, job.params.top_logprobs),
                finish_reason=choice.finish_reason,
            )
            for choice in choices
        ],
        usage=usage,
    )


async def _chunks(
    job: GenerationJob, request: CompletionRequest, metrics: ServerMetrics, stream: AsyncIterator[StreamDelta]
) -> AsyncIterator[CompletionResponse]:
    """Text deltas, a finish chunk per choice (empty text), then optional usage (no choices)."""
    chunk_id, created, fingerprint = new_id("cmpl"), now_s(), system_fingerprint(job.engine.card)

    def chunk(choice: CompletionChoice) -> CompletionResponse:
        return CompletionResponse(
            id=chunk_id, created=created, model=job.model, choices=[choice], system_fingerprint=fingerprint
        )

    tally = UsageTally(len(job.prompt_ids))
    text_offsets: dict[int, int] = {}  # index -> characters streamed so far (legacy `text_offset`)
    async for delta in stream_job(job, metrics, tally, stream):
        offset = text_offsets.get(delta.index, 0)
        text_offsets[delta.index] = offset + len(delta.text)
        if delta.text or delta.logprobs:
            logprobs = completion_logprobs(delta.logprobs, job.params.top_logprobs, offset)
            yield chunk(
                CompletionChoice(index=delta.index, text=delta.text, logprobs=logprobs, finish_reason=None)
            )
        if delta.finish_reason is not None:
            yield chunk(CompletionChoice(index=delta.index, text="", finish_reason=delta.finish_reason))
    if request.includes_stream_usage:
        yield CompletionResponse(
            id=chunk_id,
            created=created,
            model=job.model,
            choices=[],
            usage=tally.usage(),
            system_fingerprint=fingerprint,
        )
