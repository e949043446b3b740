"""Calling the engine for one request: deadlines, cancellation on disconnect, and usage counting.

Both endpoints go through here, so "a gone client or a timeout aborts the engine work" and "usage
counts every token the request caused" are implemented once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request

from engine.protocol import Continuation, Engine, SamplingParams, StreamDelta
from server.errors import ApiError, queue_timed_out, timed_out
from server.leases import EngineLease, released_on_error
from server.limits import Admission
from server.metrics import ServerMetrics
from server.queueing import QueueClock, expire_unless_started
from server.responses import PromptTokensDetails, UsageInfo
from server.streaming import close_stream

if TYPE_CHECKING:  # the state holds the pool and gate this module's callers pass in
    from server.state import ServerState

T = TypeVar("T")

CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"; never seen by a client


@dataclass
class UsageTally:
    """Usage of one request: the prompt once, completion tokens summed over every choice.

    Cached prompt tokens are the minimum over choices: the prompt is counted once, and the
    honest figure is how much of it was found in the cache before this request, not how much
    one choice reused from a sibling computed a moment earlier.
    """

    num_prompt_tokens: int
    num_completion_tokens: int = 0
    cached_by_index: dict[int, int] = field(default_factory=dict)

    def add(self, index: int, num_new_tokens: int, num_cached_prompt_tokens: int) -> None:
        self.num_completion_tokens += num_new_tokens
        self.cached_by_index[index] = max(self.cached_by_index.get(index, 0), num_cached_prompt_tokens)

    def add_continuations(self, continuations: Sequence[Continuation]) -> None:
        for choice in continuations:
            self.add(choice.index, len(choice.token_ids), choice.num_cached_prompt_tokens)

    def usage(self) -> UsageInfo:
        cached = min(self.cached_by_index.values(), default=0)
        return UsageInfo(
            prompt_tokens=self.num_prompt_tokens,
            completion_tokens=self.num_completion_tokens,
            total_tokens=self.num_prompt_tokens + self.num_completion_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=min(cached, self.num_prompt_tokens)),
        )


@dataclass(frozen=True)
class GenerationJob:
    """One checked request, ready for the engine: nothing here can still be rejected as a 400."""

    model: str
    engine: Engine
    prompt_ids: list[int]
    params: SamplingParams
    timeout_s: float
    queue_timeout_s: float

    def queue_clock(self, admission: Admission, metrics: ServerMetrics) -> QueueClock:
        record = partial(metrics.observe_queue, self.model)
        return QueueClock(admission.admitted_at, self.queue_timeout_s, record)


async def _until_disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def generate_choices(job: GenerationJob, request: Request, clock: QueueClock) -> list[Continuation]:
    """All `params.n` continuations of the prompt, ordered by index.

    Raises `ApiError(504)` past the deadline, `ApiError(503)` if the engine has not begun it
    within the queue timeout, and `ApiError(499)` when the client disconnects; in each case the
    engine call is cancelled (and has released its cache references) on return.
    """
    work = job.engine.generate([job.prompt_ids], job.params, on_start=clock.on_start)
    results = await await_unless_disconnected(work, request, job.timeout_s, clock)
    return sorted(results[0], key=lambda choice: choice.index)


async def await_unless_disconnected(
    work: Awaitable[T], request: Request, timeout_s: float, queue: QueueClock | None = None
) -> T:
    """The result of `work`, cancelled (and so freeing its engine work) if the client goes away
    (`ApiError(499)`), the deadline passes (`ApiError(504)`) or, given a `queue` clock, the
    engine does not begin it in time (`ApiError(503)`)."""
    task = asyncio.ensure_future(work)
    guards = [asyncio.ensure_future(_until_disconnected(request))]
    if queue is not None:
        guards.append(asyncio.ensure_future(expire_unless_started(queue)))
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.wait({task, *guards}, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        raise timed_out(timeout_s) from None
    finally:
        for pending in (task, *guards):
            pending.cancel()
        await asyncio.gather(task, *guards, return_exceptions=True)
    queue_error = next((g.exception() for g in guards[1:] if not g.cancelled() and g.exception()), None)
    if queue_error is not None:
        raise queue_error
    if task.cancelled():
        raise ApiError(CLIENT_CLOSED_REQUEST, "The client closed the request.", "client_closed_request")
    return task.result()


async def run_job(
    job: GenerationJob, metrics: ServerMetrics, request: Request, admission: Admission
) -> tuple[list[Continuation], UsageInfo]:
    """Generate every choice and count the request's usage (also into the token metrics)."""
    choices = await generate_choices(job, request, job.queue_clock(admission, metrics))
    tally = UsageTally(len(job.prompt_ids))
    tally.add_continuations(choices)
    metrics.record_tokens(job.model, tally.num_prompt_tokens, tally.num_completion_tokens)
    return choices, tally.usage()


async def open_stream(
    job: GenerationJob, metrics: ServerMetrics, admission: Admission
) -> AsyncIterator[StreamDelta]:
    """The engine's deltas for `job`, once the engine has begun it, so that a request it does
    not begin within the queue timeout (503) or refuses outright (a bad prompt: 400) is answered
    with a status before any event. Releases `admission` if it raises."""
    clock = job.queue_clock(admission, metrics)
    stream = job.engine.stream(job.prompt_ids, job.params, on_start=clock.on_start)
    first = asyncio.ensure_future(anext(stream))
    try:
        waits: set[asyncio.Future[Any]] = {first, clock.started}
        await asyncio.wait(waits, timeout=clock.remaining_s(), return_when=asyncio.FIRST_COMPLETED)
        refusal = first.exception() if first.done() else None
        if refusal is not None and not isinstance(refusal, StopAsyncIteration):
            raise refusal
        if not (first.done() or clock.started.done()):
            raise queue_timed_out(job.queue_timeout_s)
    except BaseException:
        admission.release()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await close_stream(stream)
        raise
    on_first_token = partial(metrics.observe_first_token, job.model)
    return _resumed(first, stream, lambda: on_first_token(clock.seconds_since_admission()))


async def _resumed(
    first: asyncio.Future[StreamDelta], rest: AsyncIterator[StreamDelta], on_first_token: Callable[[], None]
) -> AsyncIterator[StreamDelta]:
    """The delta `first` is computing, then the rest of the stream; closing closes both."""
    try:
        try:
            delta = await first
        except StopAsyncIteration:
            return
        on_first_token()
        yield delta
        async for delta in rest:
            yield delta
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await close_stream(rest)


async def stream_job(
    job: GenerationJob, metrics: ServerMetrics, tally: UsageTally, stream: AsyncIterator[StreamDelta]
) -> AsyncIterator[StreamDelta]:
    """The deltas of `stream` (from `open_stream`), counted into `tally`; closing this generator
    closes the engine stream.

    Tokens are recorded in the metrics however the stream ends: they were generated either way.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + job.timeout_s
    try:
        async for delta in stream:
            tally.add(delta.index, len(delta.token_ids), delta.num_cached_prompt_tokens)
            yield delta
            if loop.time() > deadline:
                raise timed_out(job.timeout_s)
    finally:
        await close_stream(stream)
        metrics.record_tokens(job.model, tally.num_prompt_tokens, tally.num_completion_tokens)


@dataclass
class StartedJob:
    """A plain request past every check: its job, its admission slot and engine lease, and for a
    stream the engine's deltas (already begun, so a refusal was answered with a status)."""

    job: GenerationJob
    admission: Admission
    lease: EngineLease
    stream: AsyncIterator[StreamDelta] | None = None


async def start_job(
    state: ServerState,
    model: str,
    is_streaming: bool,
    cache_salt: str | None,
    prepare: Callable[[Engine, str | None], GenerationJob],
) -> StartedJob:
    """Lease the model's engine (the request stays on it across a hot swap), check and build the
    job, admit it, and for a stream wait for the engine to begin it; releases what it took if
    any of that raises."""
    lease = state.pool.lease(model)
    with released_on_error(lease):
        job = prepare(lease.engine, cache_salt)
        admission = state.gate.admit()
        stream = await open_stream(job, state.metrics, admission) if is_streaming else None
    return StartedJob(job, admission, lease, stream)
