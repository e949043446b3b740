"""`run_on_own_thread`: a load's result or error reaches the awaiting task, and its thread ends."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine.loader_thread import run_on_own_thread


def alive(name: str) -> bool:
    return any(t.name == name for t in threading.enumerate())


def test_the_result_comes_back_from_a_thread_that_then_ends() -> None:
    seen: list[str] = []

    def load() -> int:
        seen.append(threading.current_thread().name)
        return 42

    assert asyncio.run(run_on_own_thread("ponder-load-test", load)) == 42
    assert seen == ["ponder-load-test"] and threading.main_thread().name not in seen
    threading.Event().wait(0.05)
    assert not alive("ponder-load-test")


def test_an_error_reaches_the_awaiting_task() -> None:
    def load() -> int:
        raise FileNotFoundError("no weights in /nowhere")

    with pytest.raises(FileNotFoundError, match="/nowhere"):
        asyncio.run(run_on_own_thread("ponder-load-fails", load))


def test_a_cancelled_caller_lets_the_load_finish() -> None:
    release, finished = threading.Event(), threading.Event()

    def load() -> str:
        release.wait(5)
        finished.set()
        return "loaded"

    async def cancel_then_release() -> None:
        task = asyncio.create_task(run_on_own_thread("ponder-load-cancelled", load))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.to_thread(finished.wait, 5)
        await asyncio.sleep(0.05)  # the thread's hand-off runs on this loop, and finds it done

    asyncio.run(cancel_then_release())
    assert finished.is_set()
