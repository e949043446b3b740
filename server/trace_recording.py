"""Which searches the server records (`--record-traces`), and recording them without blocking
the event loop: saves and retention run in a thread, retention every few saves and at startup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Literal

from server.errors import invalid_request
from server.settings import ServerSettings
from server.trace_records import TraceRecord
from server.trace_store import TraceStore

logger = logging.getLogger("ponder.traces")

RecordMode = Literal["off", "opt-in", "all"]
BYTES_PER_MB = 1024 * 1024
SAVES_PER_RETENTION = 64
"""How often retention runs between restarts: often enough that the store overshoots its size
limit by only a few dozen traces, rarely enough that its full scan costs nothing per request."""


@dataclass(frozen=True)
class TraceRecording:
    """The operator's policy: which searches to record and how long to keep them."""

    mode: RecordMode = "opt-in"
    max_age_days: float = 30.0
    max_bytes: int = 1024 * BYTES_PER_MB

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> TraceRecording:
        max_bytes = settings.trace_max_mb * BYTES_PER_MB
        return cls(settings.record_traces, settings.trace_retention_days, max_bytes)

    def check(self, is_asked: bool) -> None:
        """A 400 naming `search.trace` when a request asks for a trace the server does not keep."""
        if is_asked and self.mode == "off":
            raise invalid_request(
                "This server records no traces (--record-traces off); set search.trace to false.",
                "search.trace",
                "traces_disabled",
            )

    def is_recorded(self, is_asked: bool) -> bool:
        """Whether a search is recorded: all of them, none, or those that ask (`search.trace`)."""
        return self.mode == "all" or (self.mode == "opt-in" and is_asked)


class TraceRecorder:
    """Saves records off the event loop and keeps the store within its retention policy."""

    def __init__(self, store: TraceStore, recording: TraceRecording) -> None:
        self.store = store
        self.recording = recording
        self._num_saves = 0
        self._counting = threading.Lock()

    async def save(self, record: TraceRecord) -> str:
        """The new trace's id; every SAVES_PER_RETENTION saves, retention runs after the save."""
        return await asyncio.to_thread(self._save_then_maybe_prune, record)

    def _save_then_maybe_prune(self, record: TraceRecord) -> str:
        trace_id = self.store.save(record)
        with self._counting:
            self._num_saves += 1
            is_due = self._num_saves % SAVES_PER_RETENTION == 0
        if is_due:
            self._prune()
        return trace_id

    async def enforce_retention(self) -> int:
        """Delete what the policy no longer keeps (in a thread); how many traces went."""
        return await asyncio.to_thread(self._prune)

    def _prune(self) -> int:
        policy = self.recording
        num_deleted = self.store.enforce_retention(policy.max_age_days, policy.max_bytes)
        if num_deleted:
            logger.info("trace retention deleted %d traces", num_deleted)
        return num_deleted

    async def close(self) -> None:
        """Checkpoint the WAL into the database file and close it."""
        await asyncio.to_thread(self.store.close)
