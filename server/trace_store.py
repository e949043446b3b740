"""Search traces kept in SQLite (WAL mode): the server records them, `GET /v1/traces` shows them,
and the trainer reads them back (`iter_records`) as training data.

Every write is one transaction, so a crash leaves each trace whole or absent, never half-written.
The tree JSON stays in `body` (the column the first schema had); the rest of a record rides in
`extra`. `PRAGMA user_version` says which schema a file has, and an old file is migrated when
opened. One connection behind a lock makes the store safe to share between threads; callers on
an event loop run its methods in a thread (`asyncio.to_thread`), since each touches the disk.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.auth import ANONYMOUS_OWNER
from server.trace_records import TraceRecord, extra_of, record_from_columns

SCHEMA_VERSION = 1
SECONDS_PER_DAY = 86_400.0
PAGE_SIZE = 100  # rows `iter_records` reads per lock hold
HEAD_COLUMNS = "id, created, model, version, strategy, owner"

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    strategy TEXT NOT NULL,
    body TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    num_bytes INTEGER NOT NULL DEFAULT 0
)
"""
# Columns schema 1 added to the schema-0 table (id, created, model, strategy, body).
ADDED_COLUMNS = (
    "version TEXT NOT NULL DEFAULT ''",
    "owner TEXT NOT NULL DEFAULT ''",
    "extra TEXT NOT NULL DEFAULT '{}'",
    "num_bytes INTEGER NOT NULL DEFAULT 0",
)
CREATE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS traces_by_time ON traces (created, id)",
    "CREATE INDEX IF NOT EXISTS traces_by_model ON traces (model, created, id)",
)
# Rows beyond the newest `max_bytes` of traces (a running total, newest first).
OVER_SIZE = """
DELETE FROM traces WHERE id IN (
    SELECT id FROM (
        SELECT id, SUM(num_bytes) OVER (ORDER BY created DESC, id DESC) AS kept FROM traces
    ) WHERE kept > ?
)
"""


def make_cursor(record: TraceRecord) -> str:
    """The opaque `after` that continues a listing below `record` (it outlives the record)."""
    return f"{record.created!r}/{record.id}"


def parse_cursor(cursor: str) -> tuple[float, str]:
    """(created, id) from `make_cursor`; ValueError naming `after` for anything else."""
    created, _, trace_id = cursor.partition("/")
    try:
        return float(created), trace_id
    except ValueError:
        raise ValueError(f"after: {cursor!r} is not a cursor from a previous page's 'next'") from None


class TraceStore:
    """Traces in one SQLite file; see the module docstring for the guarantees."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._is_closed = False
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes on a new file
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The lock and one write transaction: committed whole or rolled back whole."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls some failures back by itself
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION: create it, or add schema 1's columns to schema 0."""
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(f"{self.path} has trace schema {version}, newer than {SCHEMA_VERSION}")
            has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'traces'").fetchone()
            if version == 0 and has_table:
                for column in ADDED_COLUMNS:
                    db.execute(f"ALTER TABLE traces ADD COLUMN {column}")
                db.execute("UPDATE traces SET num_bytes = length(CAST(body AS BLOB))")
            db.execute(CREATE_TABLE)
            for statement in CREATE_INDEXES:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def save(self, record: TraceRecord) -> str:
        """Store `record` under a fresh id, which it returns; `record.id` is ignored, and
        `record.created` is kept when set (> 0), else it is now."""
        trace_id = f"trace-{uuid.uuid4().hex}"
        body, extra = json.dumps(record.tree), json.dumps(extra_of(record))
        num_bytes = len(body.encode()) + len(extra.encode())
        created = record.created if record.created > 0 else time.time()
        row = (trace_id, created, record.model, record.strategy, body, record.version, record.owner, extra)
        with self._transaction() as db:  # one statement, one transaction: all or nothing
            db.execute(
                "INSERT INTO traces (id, created, model, strategy, body, version, owner, extra, num_bytes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, num_bytes),
            )
        return trace_id

    def load(self, trace_id: str) -> TraceRecord | None:
        """The whole record, tree included; None if there is none with this id."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {HEAD_COLUMNS}, extra, body FROM traces WHERE id = ?", (trace_id,)
            ).fetchone()
        return None if found is None else _record(found)

    def iter_records(self, model: str, since: float = 0.0) -> Iterator[TraceRecord]:
        """Every whole record of `model` created at or after `since`, oldest first (for the
        trainer). Reads a page at a time, so saves and reads go on between pages."""
        position: tuple[float, str] = (since, "")
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {HEAD_COLUMNS}, extra, body FROM traces WHERE model = ? AND created >= ?"
                    " AND (created, id) > (?, ?) ORDER BY created, id LIMIT ?",
                    (model, since, *position, PAGE_SIZE),
                ).fetchall()
            for row in rows:
                yield _record(row)
            if len(rows) < PAGE_SIZE:
                return
            position = (rows[-1][1], rows[-1][0])

    def delete(self, trace_id: str) -> bool:
        """Remove one trace; False when there was none with this id."""
        with self._transaction() as db:
            return db.execute("DELETE FROM traces WHERE id = ?", (trace_id,)).rowcount > 0

    def enforce_retention(self, max_age_days: float, max_bytes: int, now: float | None = None) -> int:
        """Delete traces older than `max_age_days`, then the oldest until the stored traces
        (tree and record JSON) fit in `max_bytes`; returns how many went. Freed pages return
        to the file system on files this store created (incremental auto-vacuum)."""
        cutoff = (time.time() if now is None else now) - max_age_days * SECONDS_PER_DAY
        with self._transaction() as db:
            num_old = db.execute("DELETE FROM traces WHERE created < ?", (cutoff,)).rowcount
            num_big = db.execute(OVER_SIZE, (max_bytes,)).rowcount
        if num_old + num_big:
            with self._lock:
                self._db.execute("PRAGMA incremental_vacuum")
        return int(num_old + num_big)

    def close(self) -> None:
        """Checkpoint the WAL into the main file, truncate it, and close (idempotent)."""
        with self._lock:
            if self._is_closed:
                return
            self._is_closed = True
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    def list(
        self,
        model: str | None = None,
        since: float | None = None,
        limit: int = 20,
        after: str | None = None,
        owner: str | None = None,
    ) -> tuple[builtins.list[TraceRecord], str | None]:
        """One page of summaries (records with `tree` left empty), newest first, and the cursor
        of the next page (None on the last). `owner` keeps the traces it made and anonymous
        ones (what a non-admin caller may read); None keeps all. ValueError for a bad cursor."""
        if limit < 1:
            raise ValueError(f"limit: must be >= 1, got {limit}")
        where, params = _filters(model, since, after, owner)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {HEAD_COLUMNS}, extra, '{{}}' FROM traces WHERE {where}"
                " ORDER BY created DESC, id DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        records = [_record(row) for row in rows[:limit]]
        return records, make_cursor(records[-1]) if len(rows) > limit else None


def _filters(
    model: str | None, since: float | None, after: str | None, owner: str | None
) -> tuple[str, builtins.list[Any]]:
    """The WHERE clause of a listing and its parameters."""
    clauses: builtins.list[str] = ["1"]
    params: builtins.list[Any] = []
    if model is not None:
        clauses.append("model = ?")
        params.append(model)
    if since is not None:
        clauses.append("created >= ?")
        params.append(since)
    if after is not None:
        clauses.append("(created, id) < (?, ?)")
        params.extend(parse_cursor(after))
    if owner is not None:
        clauses.append("owner IN (?, ?)")
        params.extend([owner, ANONYMOUS_OWNER])
    return " AND ".join(clauses), params


def _record(row: tuple[Any, ...]) -> TraceRecord:
    """A record from (HEAD_COLUMNS..., extra, body)."""
    return record_from_columns(row[:6], json.loads(row[6]), json.loads(row[7]))
