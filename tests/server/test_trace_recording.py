"""The recording policy (`--record-traces`) and the recorder's periodic retention, on real SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.errors import ApiError
from server.trace_recording import SAVES_PER_RETENTION, RecordMode, TraceRecorder, TraceRecording
from server.trace_records import TraceRecord
from server.trace_store import TraceStore


@pytest.mark.parametrize(
    ("mode", "is_asked", "expected"),
    [
        ("off", False, False),
        ("opt-in", False, False),
        ("opt-in", True, True),
        ("all", False, True),
        ("all", True, True),
    ],
)
def test_which_searches_are_recorded(mode: RecordMode, is_asked: bool, expected: bool) -> None:
    assert TraceRecording(mode).is_recorded(is_asked) is expected


def test_asking_for_a_trace_when_recording_is_off_is_a_400_naming_search_trace() -> None:
    TraceRecording("off").check(is_asked=False)
    with pytest.raises(ApiError) as refused:
        TraceRecording("off").check(is_asked=True)
    assert (refused.value.status, refused.value.param) == (400, "search.trace")


def test_the_recorder_applies_retention_every_so_many_saves(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.sqlite3")
    recorder = TraceRecorder(store, TraceRecording("all", max_age_days=30, max_bytes=1))
    record = TraceRecord("", 0.0, "countdown", "", "greedy", "", answer="x", tree={"text": "x"})

    async def save(count: int) -> list[str]:
        return [await recorder.save(record) for _ in range(count)]

    ids = asyncio.run(save(SAVES_PER_RETENTION - 1))
    assert len(list(store.iter_records("countdown"))) == len(ids)  # not due yet
    asyncio.run(save(1))
    assert list(store.iter_records("countdown")) == []  # 1 byte keeps nothing
    asyncio.run(recorder.close())
