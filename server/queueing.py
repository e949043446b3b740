"""Queue time: from admission until the engine begins a request (its prefill), bounded by
`queue_timeout_s`. A request still waiting then gets a 503 with `Retry-After` and leaves the
engine's queue, instead of waiting without bound behind a burst.

Admission (`server.limits`) only counts requests; the queue is wherever admitted work waits
for the engine: the embedded engine's pending groups while its batch is full, or vLLM's own
scheduler, which ponder cannot see (there a request counts as begun when it is submitted).
Time to first token, for streamed requests, runs from admission until the first token reaches
the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from server.errors import queue_timed_out


def _new_future() -> asyncio.Future[float]:
    return asyncio.get_running_loop().create_future()


@dataclass
class QueueClock:
    """One request's wait for the engine; `on_start` is the engine's `StartCallback`."""

    admitted_at: float  # time.monotonic()
    timeout_s: float
    record: Callable[[float], None]  # observes the queue time, once
    started: asyncio.Future[float] = field(default_factory=_new_future)

    def on_start(self, started_at: float) -> None:
        if not self.started.done():
            self.started.set_result(started_at)
            self.record(max(0.0, started_at - self.admitted_at))

    def remaining_s(self) -> float:
        return max(0.0, self.admitted_at + self.timeout_s - time.monotonic())

    def seconds_since_admission(self) -> float:
        return time.monotonic() - self.admitted_at


async def expire_unless_started(clock: QueueClock) -> NoReturn:
    """Raise `queue_timed_out` if the engine has not begun the request in time; once it has,
    wait until cancelled (raced against the request's work, it must not finish first)."""
    try:
        await asyncio.wait_for(asyncio.shield(clock.started), clock.remaining_s())
    except TimeoutError:
        raise queue_timed_out(clock.timeout_s) from None
    await asyncio.Event().wait()
    raise AssertionError("unreachable: the event is never set")
