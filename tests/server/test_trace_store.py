"""The trace store on real SQLite files: round trips, migration, paging, retention, deletion,
a clean close, and what a writer killed mid-transaction leaves behind."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from server import trace_store
from server.trace_records import ReplyRecord, TraceRecord
from server.trace_store import SCHEMA_VERSION, TraceStore, make_cursor
from tests.conftest import REPO_ROOT

DAY = 86_400.0
OLD_SCHEMA = "CREATE TABLE traces (id TEXT PRIMARY KEY, created REAL NOT NULL, model TEXT NOT NULL, "
OLD_SCHEMA += "strategy TEXT NOT NULL, body TEXT NOT NULL)"


def record(model: str = "countdown", created: float = 0.0, owner: str = "", text: str = "a") -> TraceRecord:
    reply = ReplyRecord(text=text, steps=[text], step_scores=[0.5], score=0.5, is_verified=False)
    return TraceRecord(
        id="",
        created=created,
        model=model,
        version="countdown-v2",
        strategy="beam",
        owner=owner,
        messages=[{"role": "user", "content": "countdown target=9 numbers=4,5"}],
        settings={"strategy": "beam", "budget_tokens": 128},
        replies=[reply],
        answer=text,
        is_verified=False,
        tree={"root": {"children": [{"text": text}]}},
    )


@pytest.fixture
def store(tmp_path: Path) -> TraceStore:
    return TraceStore(tmp_path / "traces.sqlite3")


def test_a_record_round_trips_whole_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite3"
    first = TraceStore(path)
    trace_id = first.save(record(created=123.5, owner="o1"))
    first.close()
    again = TraceStore(path)
    loaded = again.load(trace_id)
    assert loaded is not None and loaded.id == trace_id
    assert loaded == replace(record(created=123.5, owner="o1"), id=trace_id)
    assert again.load("trace-missing") is None
    again.close()


def test_save_assigns_fresh_ids_and_the_time_when_created_is_unset(store: TraceStore) -> None:
    before = time.time()
    ids = {store.save(record()) for _ in range(20)}
    assert len(ids) == 20
    loaded = store.load(ids.pop())
    assert loaded is not None and before <= loaded.created <= time.time()


def test_an_old_schema_file_is_migrated_and_its_rows_become_records(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    tree = {"text": "answer: 9", "tree": {"root": {}}}
    with sqlite3.connect(path) as db:
        db.execute(OLD_SCHEMA)
        db.execute(
            "INSERT INTO traces VALUES ('trace-old', 5.0, 'countdown', 'mcts', ?)", (json.dumps(tree),)
        )
    store = TraceStore(path)
    old = store.load("trace-old")
    assert old is not None
    assert (old.model, old.strategy, old.created, old.tree) == ("countdown", "mcts", 5.0, tree)
    assert (old.version, old.owner, old.messages, old.settings, old.replies) == ("", "", [], {}, [])
    new_id = store.save(record())
    store.close()
    reopened = TraceStore(path)  # a second open finds the new schema and leaves it be
    assert [r.id for r in reopened.iter_records("countdown")] == ["trace-old", new_id]
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="newer"):
        TraceStore(path)


def test_pages_cover_every_trace_once_newest_first_even_with_equal_times(store: TraceStore) -> None:
    ids = [store.save(record(created=100.0 + i // 2)) for i in range(7)]  # pairs share a time
    seen: list[TraceRecord] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list(limit=3, after=cursor)
        seen.extend(page)
        assert len(page) <= 3 and all(r.tree == {} for r in page)  # summaries carry no tree
        if cursor is None:
            break
    assert sorted(r.id for r in seen) == sorted(ids) and len(seen) == 7
    keys = [(r.created, r.id) for r in seen]
    assert keys == sorted(keys, reverse=True)


def test_a_cursor_outlives_the_trace_it_was_taken_from(store: TraceStore) -> None:
    for i in range(4):
        store.save(record(created=10.0 + i))
    page, cursor = store.list(limit=2)
    assert cursor == make_cursor(page[-1])
    store.delete(page[-1].id)
    rest, _ = store.list(limit=2, after=cursor)
    assert [r.created for r in rest] == [11.0, 10.0]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"model": "other"}, {"other-owned"}),
        ({"since": 3.0}, {"b-anonymous", "other-owned"}),
        ({"owner": "o1"}, {"a-owned", "b-anonymous"}),
        ({"owner": "o2", "model": "countdown"}, {"b-anonymous"}),
        ({}, {"a-owned", "b-anonymous", "other-owned"}),
    ],
)
def test_listing_filters_by_model_time_and_reader(store: TraceStore, filters: dict, expected: set) -> None:
    store.save(record(created=1.0, owner="o1", text="a-owned"))
    store.save(record(created=3.0, owner="", text="b-anonymous"))
    store.save(record(model="other", created=5.0, owner="o2", text="other-owned"))
    page, cursor = store.list(**filters)
    assert {r.answer for r in page} == expected and cursor is None


def test_a_bad_cursor_is_a_value_error_naming_after(store: TraceStore) -> None:
    with pytest.raises(ValueError, match="^after"):
        store.list(after="not-a-cursor")


def test_iter_records_gives_whole_records_oldest_first_across_pages(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_store, "PAGE_SIZE", 2)
    for i in range(5):
        store.save(record(created=10.0 - i, text=f"t{i}"))
    store.save(record(model="other", created=1.0))
    records = list(store.iter_records("countdown"))
    assert [r.answer for r in records] == ["t4", "t3", "t2", "t1", "t0"]
    assert all(r.tree and r.replies for r in records)
    assert [r.answer for r in store.iter_records("countdown", since=8.0)] == ["t2", "t1", "t0"]


def test_delete_removes_one_trace_and_says_whether_it_did(store: TraceStore) -> None:
    kept, gone = store.save(record()), store.save(record())
    assert store.delete(gone) is True
    assert store.delete(gone) is False
    assert store.load(gone) is None and store.load(kept) is not None


def test_retention_by_age_deletes_only_what_is_too_old(store: TraceStore) -> None:
    now = time.time()
    old, recent = store.save(record(created=now - 40 * DAY)), store.save(record(created=now - 10 * DAY))
    assert store.enforce_retention(max_age_days=30, max_bytes=10**9) == 1
    assert store.load(old) is None and store.load(recent) is not None


def test_retention_by_size_deletes_the_oldest_first(store: TraceStore) -> None:
    ids = [store.save(record(created=1000.0 + i)) for i in range(5)]
    with sqlite3.connect(store.path) as db:
        sizes = {row[0] for row in db.execute("SELECT num_bytes FROM traces")}
    [size] = sizes  # equal records, equal sizes
    assert store.enforce_retention(max_age_days=10**6, max_bytes=2 * size + size // 2) == 3
    assert [r.id for r in store.iter_records("countdown")] == ids[3:]
    assert store.enforce_retention(max_age_days=10**6, max_bytes=2 * size) == 0


def test_close_checkpoints_the_wal_and_keeps_every_trace(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite3"
    store = TraceStore(path)
    ids = [store.save(record()) for _ in range(10)]
    wal = Path(f"{path}-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the saves are in the WAL until the close
    store.close()
    store.close()  # a second close is harmless
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(path) as db:
        assert {row[0] for row in db.execute("SELECT id FROM traces")} == set(ids)


WRITER = """
import sys
from server.trace_records import TraceRecord
from server.trace_store import TraceStore
store = TraceStore(sys.argv[1])
tree = {"text": "x" * 200_000}
while True:
    store.save(TraceRecord("", 0.0, "countdown", "", "beam", "", tree=tree, answer="x"))
    print("saved", flush=True)
"""


def test_a_writer_killed_mid_save_leaves_only_whole_traces(tmp_path: Path) -> None:
    path = tmp_path / "traces.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=REPO_ROOT, stdout=subprocess.PIPE
    )
    assert writer.stdout is not None
    for _ in range(5):
        assert writer.stdout.readline() == b"saved\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = TraceStore(path)
    records = list(store.iter_records("countdown"))
    assert len(records) >= 5
    assert all(r.tree == {"text": "x" * 200_000} and r.answer == "x" for r in records)
    store.close()
