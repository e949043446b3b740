"""Search traces kept in SQLite, so `GET /v1/traces/{id}` outlives the request and a restart.

Each trace is written in one transaction: a crash leaves either the whole tree or nothing,
never a half-written row. The trainer later reads the same table to build training data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    strategy TEXT NOT NULL,
    body TEXT NOT NULL
)
"""


class TraceStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)

    def save(self, model: str, strategy: str, body: dict[str, Any]) -> str:
        trace_id = f"trace-{uuid.uuid4().hex}"
        row = (trace_id, time.time(), model, strategy, json.dumps(body))
        with self._lock, self._db:  # one transaction: all or nothing
            self._db.execute("INSERT INTO traces VALUES (?, ?, ?, ?, ?)", row)
        return trace_id

    def load(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._db.execute(
                "SELECT id, created, model, strategy, body FROM traces WHERE id = ?", (trace_id,)
            ).fetchone()
        if found is None:
            return None
        return {
            "id": found[0],
            "object": "search.trace",
            "created": found[1],
            "model": found[2],
            "strategy": found[3],
            "tree": json.loads(found[4]),
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
