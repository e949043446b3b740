"""Model loading on a thread of its own that ends when the load does.

libgomp, the OpenMP runtime under torch's CPU ops, gives every thread that runs a parallel op its
own team of pool threads. Once the process manages more such threads than it has cores, libgomp
stops spin-waiting at barriers (its "throttled" spin) and every fork and join of every team
sleeps and wakes through the kernel. A model loaded on asyncio's shared executor left a
two-thread team behind on a thread that lives as long as the process. After that, SmolLM2's int4
decode step on its worker thread took 13.9 ms instead of 6.7 ms on two cores
(docs/speed.md). A thread that exits releases its team, so loads run on a fresh one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_on_own_thread(name: str, fn: Callable[[], T]) -> T:
    """`fn()` on a new thread that ends with it; its result or exception, awaited without
    blocking the event loop. A cancelled caller does not stop `fn`: a load runs to its end."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (fn(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, not swallowed
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(deliver, *outcome)
        except RuntimeError:  # the loop closed while this load ran: nobody is waiting
            pass

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
