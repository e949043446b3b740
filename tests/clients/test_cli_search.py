"""`ponder chat --search ... --stream` in a real terminal (a pty: what a person sees, stderr and
stdout interleaved as they arrive), `ponder trace ID [--open]` and `ponder bench`, against a
live Countdown server."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clients.cli import main
from clients.common import best_path_steps
from tests.conftest import REPO_ROOT

PUZZLE = "countdown target=31 numbers=19,4,45,99"
REASONING_INDENT, EVENT_INDENT = "  ", "  . "
PTY_TIMEOUT_S = 120.0


def run_in_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `python -m clients.cli argv` on a pty; its exit status and the lines it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", *argv], cwd=REPO_ROOT, env=env, stdout=follower, stderr=follower
    )
    os.close(follower)
    lines: list[str] = []
    pending, deadline = b"", time.monotonic() + PTY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not select.select([leader], [], [], 0.5)[0]:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal: EIO on Linux
            break
        if not data:
            break
        *complete, pending = (pending + data).split(b"\n")
        lines.extend(line.decode().rstrip("\r") for line in complete)
    os.close(leader)
    return process.wait(timeout=30), lines


def test_chat_streams_a_search_in_a_terminal(countdown_server: Any, tmp_path: Path) -> None:
    argv = ["--base-url", countdown_server.base_url, "chat", PUZZLE, "--model", "countdown"]
    argv += ["--search", "mcts", "--budget", "1024", "--stream", "--trace", "--events"]
    env = os.environ | {"PONDER_API_KEY": countdown_server.api_key, "TERM": "xterm"}
    status, screen = run_in_terminal(argv, env)
    (tmp_path / "terminal.txt").write_text("\n".join(screen))
    assert status == 0, screen
    events = [text.removeprefix(EVENT_INDENT).split()[0] for text in screen if text.startswith(EVENT_INDENT)]
    assert events[0] == "progress" and {"expand", "score", "rollout", "chosen"} <= set(events)
    screen = [text for text in screen if not text.startswith(EVENT_INDENT)]
    reasoning = [i for i, text in enumerate(screen) if text.startswith(REASONING_INDENT)]
    summary = next(i for i, text in enumerate(screen) if text.startswith("-- mcts: "))
    steps = best_path_steps("\n".join(screen[i].removeprefix(REASONING_INDENT) for i in reasoning))
    answer = screen[reasoning[-1] + 1 : summary]
    assert reasoning == list(range(len(reasoning))) and steps  # the reasoning comes first...
    assert [line for line in answer if line] == steps  # ...then the answer: the best path's steps
    assert int(re.search(r"(\d+) tokens", screen[summary])[1]) <= 1024  # type: ignore[index]
    assert "trace trace-" in screen[summary]


def test_trace_prints_the_chosen_path_and_opens_the_viewer(countdown_server: Any, tmp_path: Path) -> None:
    base = ["--base-url", countdown_server.base_url, "--api-key", countdown_server.api_key]
    browser = tmp_path / "browser.sh"  # $BROWSER: what `webbrowser` runs; it notes the URL it got
    browser.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened.txt"}\n')
    browser.chmod(0o755)
    env = os.environ | {"BROWSER": str(browser)}
    chat = [*base, "chat", PUZZLE, "--model", "countdown", "--search", "beam", "--budget", "256", "--trace"]
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", *chat], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    trace_id = re.search(r"trace (trace-\w+)", done.stderr)[1]  # type: ignore[index]
    shown = subprocess.run(
        [sys.executable, "-m", "clients.cli", *base, "trace", trace_id, "--open"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    path = [
        line.split(". ", 1)[1].split("  prm")[0].strip()
        for line in shown.stdout.splitlines()
        if re.match(r"^ +\d+\. ", line)
    ]
    assert [step for step in path if step != "(end of reply)"] == done.stdout.strip().splitlines()
    assert f"viewer: {countdown_server.base_url}/traces/{trace_id}\n" in shown.stdout  # no key printed
    opened = (tmp_path / "opened.txt").read_text().strip()
    assert opened == f"{countdown_server.base_url}/traces/{trace_id}#key={countdown_server.api_key}"


def test_unknown_trace_is_a_404(countdown_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--base-url", countdown_server.base_url, "--api-key", countdown_server.api_key]
    assert main([*base, "trace", "trace-nope"]) == 1
    assert "404" in capsys.readouterr().err


def test_budget_needs_a_search(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chat", "hi", "--budget", "10"])
    assert exited.value.code == 2 and "--search" in capsys.readouterr().err


def test_bench_lists_and_runs_the_benches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 0
    listed = capsys.readouterr().out
    assert "strategies" in listed and "report" not in listed
    assert main(["bench", "no-such-bench"]) == 2
    assert "strategies" in capsys.readouterr().err
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", "bench", "strategies", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "usage" in done.stdout
