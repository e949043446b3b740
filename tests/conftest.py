"""Shared fixtures: a free TCP port, and the real ponder server running as a subprocess.

`live_server` is session-scoped and started only when a test asks for it: one real
`python -m server` serving SmolLM2 through the embedded engine, with an API key and tight limits
so the 401/413/429 paths are reachable. The first run converts the GGUF into `.cache/models/`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.server_process import (
    find_free_port,
    start_server_process,
    stop_server_process,
    wait_until_ready,
)

__all__ = ["find_free_port", "start_server_process", "stop_server_process", "wait_until_ready"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_qwen_prm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Qwen2.5-Math-PRM-style folder: random 2-label Qwen2 token classifier, `<extra_0>` steps."""
    from tests.rewards.tiny_models import build_tiny_qwen_prm

    return build_tiny_qwen_prm(tmp_path_factory.mktemp("tiny-qwen-prm"))


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
