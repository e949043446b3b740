"""Leases: which requests still run on which engine, so a hot swap never pulls one from under them.

A request takes a lease on its model's current engine when it starts and gives it back when its
response (or stream) ends, however it ends. A swap replaces the pool's engine at once; the old one
is closed only when the last lease on it is returned. So a request runs on exactly one version
from its first token to its last, and a search's branches all run on the version it started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Protocol

from engine.protocol import Engine

RELEASE_POLL_S = 0.05
"""How often a retiring engine checks for its last lease: swaps are rare, a poll is enough."""


class Releasable(Protocol):
    """Something a request holds until its response ends (a lease, an admission slot)."""

    def release(self) -> None: ...


class LeaseBook:
    """How many leases each engine has out; engines are told apart by identity."""

    def __init__(self) -> None:
        self._num_held: dict[int, int] = {}

    def acquire(self, engine: Engine) -> EngineLease:
        self._num_held[id(engine)] = self.num_held(engine) + 1
        return EngineLease(engine, self)

    def num_held(self, engine: Engine) -> int:
        return self._num_held.get(id(engine), 0)

    def give_back(self, engine: Engine) -> None:
        """Called once per lease, through `EngineLease.release`."""
        remaining = self.num_held(engine) - 1
        if remaining > 0:
            self._num_held[id(engine)] = remaining
        else:
            self._num_held.pop(id(engine), None)

    async def wait_released(self, engine: Engine, timeout_s: float) -> bool:
        """True once no lease on `engine` is out; False if some still are after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.num_held(engine) > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(RELEASE_POLL_S)
        return True


class EngineLease:
    """One request's hold on the engine it started on; `release` is idempotent, so every exit
    path (done, failed, client gone, stream closed) may call it."""

    def __init__(self, engine: Engine, book: LeaseBook) -> None:
        self.engine = engine
        self._book: LeaseBook | None = book

    @property
    def is_held(self) -> bool:
        return self._book is not None

    def release(self) -> None:
        if self._book is not None:
            self._book.give_back(self.engine)
            self._book = None

    def __enter__(self) -> EngineLease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@contextlib.contextmanager
def released_on_error(*holds: Releasable) -> Iterator[None]:
    """Give `holds` back if the block raises (a 400 or 429 after the lease was taken); on
    success the caller keeps them and hands them to the response."""
    try:
        yield
    except BaseException:
        for hold in holds:
            hold.release()
        raise
