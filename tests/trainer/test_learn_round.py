"""A whole (tiny) learning round as `./run learn` runs it, killed with SIGKILL mid-collection and
run again: it resumes without redoing finished work, and only a finished round publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.versions import VersionStore, verify_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_ROUND = [
    "--problems", "80", "--strategy", "best_of_n", "--budget", "256",
    "--gate-strategy", "best_of_n", "--gate-budget", "256",
    "--gate-problems", "24", "--gate-search-problems", "8",
    "--epochs", "1", "--dpo", "on", "--max-drop-z", "-1000",  # always promote: the test is the plumbing
    "--temperature-problems", "4",
    "--concurrency", "16", "--threads", "1",
]  # fmt: skip


def learn(tmp_path: Path) -> subprocess.Popen[bytes]:
    flags = ["--store", str(tmp_path / "store"), "--runs-dir", str(tmp_path / "runs")]
    flags += ["--trace-db", str(tmp_path / "none.sqlite3")]
    log = (tmp_path / "learn.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "trainer.learn", *TINY_ROUND, *flags], cwd=REPO_ROOT, stdout=log, stderr=log
    )


@pytest.mark.slow
def test_a_killed_round_resumes_and_publishes_once(tmp_path: Path) -> None:
    round_dir = tmp_path / "runs" / "countdown" / "round-01"
    first_part = round_dir / "collect" / "part-00000.jsonl"
    process = learn(tmp_path)
    deadline = time.monotonic() + 240
    while not first_part.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first_part.exists(), (tmp_path / "learn.log").read_text()[-3000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    store = VersionStore(tmp_path / "store")
    served = store.current("countdown")  # the shipped version (0 when models/countdown has no manifest)
    served_prm = store.current("countdown-checker")
    assert served is not None and store.history("countdown") == [served], (
        "nothing is published before the gate"
    )
    written = first_part.stat().st_mtime_ns

    process = learn(tmp_path)
    assert process.wait(timeout=600) == 0, (tmp_path / "learn.log").read_text()[-3000:]
    assert first_part.stat().st_mtime_ns == written, "the finished part was not collected again"
    state = json.loads((round_dir / "state.json").read_text())
    assert state["finished"] and state["stages"]["collect"]["problems"] == 80
    assert state["stages"]["dpo"].get("pairs", 0) > 0 or "skipped" in state["stages"]["dpo"]
    assert store.current("countdown") == served + 1
    if state["stages"]["reward_refresh"].get("skipped") is None:
        assert served_prm is not None and store.current("countdown-checker") == served_prm + 1
    manifest = verify_folder(store.folder("countdown", served + 1))
    assert manifest.parent == served and manifest.data["round"] == 1
    assert manifest.data["expert_iteration"]["examples"] == state["stages"]["expert_iteration"]["examples"]
    assert [r["setting"] for r in manifest.eval["rows"]] == ["greedy", "best_of_n@256"]
    tuned = state["stages"]["tune"]
    assert set(tuned["tuning_accuracy"]) == {"0.3", "0.45", "0.6", "0.75"}
    served_sampling = json.loads((store.folder("countdown", served + 1) / "tuned_sampling.json").read_text())
    assert served_sampling == {"temperature": tuned["temperature"]}
    assert "round 1:" in (tmp_path / "learn.log").read_text()
