"""A first-come, first-served lock: the turnstile every forward pass in this process goes through.

`threading.Lock` is not fair. A thread that releases it and asks again at once (an engine's
loop, step after step) usually gets it back before a waiting thread even wakes, so one model with
steady work could starve another's queue. Here a release hands the lock straight to the thread
that has waited longest, so engines that take one turn per step alternate step by step.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FairLock:
    """A non-reentrant mutex granted in the order `acquire` was called (a ticket lock)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards the fields below, held only for a few lines
        self._is_held = False
        self._waiters: deque[threading.Lock] = deque()  # one pre-locked gate per waiting thread

    def acquire(self) -> bool:
        with self._mutex:
            if not self._is_held:
                self._is_held = True
                return True
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # opened by `release`, which hands the lock over without freeing it
        return True

    def release(self) -> None:
        with self._mutex:
            if not self._is_held:
                raise RuntimeError("release of an unheld FairLock")
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by the oldest waiter
            else:
                self._is_held = False

    def locked(self) -> bool:
        return self._is_held

    @property
    def num_waiting(self) -> int:
        return len(self._waiters)

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
