"""SIGTERM on a real `python -m server`: a drained shutdown exits 0, and `--shutdown-timeout`
bounds the drain: a stream still running then ends with an error event and `[DONE]`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

MODEL = "smollm2-135m-instruct"
SHUTDOWN_TIMEOUT_S = 1.0
EXIT_SLACK_S = 15.0  # past the bound: uvicorn's backstop, lifespan shutdown, a busy 2-core machine


def start(tmp_path: Path, **flags: object) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = find_free_port()
    log_path = tmp_path / "server.log"
    process = start_server_process({"--port": port, "--models": MODEL, **flags}, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log_path)
    except BaseException:
        stop_server_process(process)
        raise
    return process, base_url, log_path


def test_sigterm_on_an_idle_server_exits_zero(tmp_path: Path) -> None:
    process, _, log_path = start(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log_path.read_text()[-3000:]


def test_stream_past_the_shutdown_timeout_ends_with_an_error_event(tmp_path: Path) -> None:
    process, base_url, log_path = start(tmp_path, **{"--shutdown-timeout": SHUTDOWN_TIMEOUT_S})
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from one to a thousand."}],
        "max_tokens": 2000,
        "ignore_eos": True,  # far longer than the bound on any machine
        "stream": True,
    }
    events: list[str] = []
    try:
        with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=60) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(line.removeprefix("data: "))
                if len(events) == 3:  # generation is under way
                    process.send_signal(signal.SIGTERM)
                    signalled = time.monotonic()
        exit_code = process.wait(timeout=SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S)
        took_s = time.monotonic() - signalled
    finally:
        stop_server_process(process)
    assert exit_code == 0, log_path.read_text()[-3000:]
    assert took_s < SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "server_shutting_down"
    assert "shutting down" in error["message"]
    assert all("error" not in json.loads(event) for event in events[:-2])
