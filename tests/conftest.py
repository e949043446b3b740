"""Shared fixtures: a free TCP port, and the real ponder server running as a subprocess.

`live_server` is session-scoped and started only when a test asks for it: one real
`python -m server` serving SmolLM2 through the embedded engine, with an API key and tight limits
so the 401/413/429 paths are reachable. The first run converts the GGUF into `.cache/models/`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.settings import ServerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 300.0  # a first run converts the GGUF (~20 s idle, much more on a busy machine)


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@dataclass(frozen=True)
class LiveServer:
    """How to reach the test server, and the limits it was started with."""

    base_url: str
    api_key: str
    model: str
    max_n: int
    max_tokens: int
    max_concurrent_requests: int
    max_request_bytes: int
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def log_tail(self, num_chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-num_chars:]


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Block until `/ready` answers 200; raise with the server's log if it dies or takes too long."""

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log_tail()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server was not ready after {READY_TIMEOUT_S} s:\n{log_tail()}")


def start_server_process(flags: dict[str, object], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m server` with `flags`, output to `log_path`; PONDER_* settings come only from flags."""
    command = [sys.executable, "-m", "server", *(str(part) for item in flags.items() for part in item)]
    setting_vars = {f"PONDER_{name.upper()}" for name in ServerSettings.model_fields}
    env = {key: value for key, value in os.environ.items() if key not in setting_vars}
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_server_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server_process_starter() -> Callable[[dict[str, object], Path], subprocess.Popen[bytes]]:
    return start_server_process


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = find_free_port()
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        api_key="sk-ponder-test",
        model="smollm2-135m-instruct",
        max_n=8,
        max_tokens=1024,
        max_concurrent_requests=2,
        max_request_bytes=64 * 1024,
        log_path=tmp_path_factory.mktemp("live_server") / "server.log",
    )
    flags = {
        "--port": port,
        "--models": server.model,
        "--api-key": server.api_key,
        "--max-n": server.max_n,
        "--max-tokens": server.max_tokens,
        "--max-concurrent-requests": server.max_concurrent_requests,
        "--max-request-bytes": server.max_request_bytes,
    }
    process = start_server_process(flags, server.log_path)
    try:
        wait_until_ready(server.base_url, process, server.log_path)
        yield server
    finally:
        stop_server_process(process)


@dataclass(frozen=True)
class CountdownServer:
    """A real server of the bundled Countdown policy and its PRM (`countdown_server`)."""

    base_url: str
    api_key: str
    log_path: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture(scope="session")
def countdown_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountdownServer]:
    """`python -m server --models countdown,countdown-checker` with an API key and its own trace
    store: for searches, traces, the viewer, the search metrics and the CLI. Starts in seconds."""
    from engine.models import COUNTDOWN_DEFAULT_PRM, is_available

    missing = [model for model in ("countdown", COUNTDOWN_DEFAULT_PRM) if not is_available(model)]
    if missing:
        pytest.skip(f"bundled weights absent: {missing}")
    folder = tmp_path_factory.mktemp("countdown_server")
    port = find_free_port()
    server = CountdownServer(f"http://127.0.0.1:{port}", "sk-countdown-test", folder / "server.log")
    flags = {
        "--port": port,
        "--models": f"countdown,{COUNTDOWN_DEFAULT_PRM}",
        "--api-key": server.api_key,
        "--trace-db": folder / "traces.sqlite3",
        "--model-store": folder / "versions",
        "--watch-interval-s": 0,
        "--num-threads": 1,
    }
    process = start_server_process(flags, server.log_path)
    try:
        wait_until_ready(server.base_url, process, server.log_path)
        yield server
    finally:
        stop_server_process(process)
