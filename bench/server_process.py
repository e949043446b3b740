"""A real `python -m server` in a child process: start it, wait until it is ready, stop it.

The benches that drive a server over HTTP and the tests that do share this, so both see the
server exactly as `./run serve` starts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from server.settings import ServerSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = float(os.environ.get("PONDER_READY_TIMEOUT_S", "300"))
"""A first run converts the GGUF (~20 s idle) and vLLM compiles on start: both take much longer on a
busy machine, where PONDER_READY_TIMEOUT_S gives them more time."""


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server_process(flags: dict[str, object], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m server` with `flags`, output to `log_path`; PONDER_* settings come only from flags.
    A list value repeats its flag."""
    command = [sys.executable, "-m", "server"]
    for flag, value in flags.items():  # a list value repeats the flag (--model a --model b)
        values = value if isinstance(value, list | tuple) else [value]
        command += [part for one in values for part in (flag, str(one))]
    setting_vars = {f"PONDER_{name.upper()}" for name in ServerSettings.model_fields}
    env = {key: value for key, value in os.environ.items() if key not in setting_vars}
    with log_path.open("wb") as log:
        # Its own process group, so a stop reaches the processes it starts (vLLM's engine core).
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


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


def stop_server_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server drains and stops its engines), SIGKILL after 20 s; then SIGKILL to
    whatever of its process group outlived it: a server killed while vLLM was still starting
    leaves the engine-core process behind otherwise (seen: a 1 GB orphan for 90 minutes)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_server(flags: dict[str, object], folder: Path) -> Iterator[str]:
    """A ready server on a free port with `flags` (its log in `folder`); yields its base URL and
    stops it however the block ends."""
    with running_server_process(flags, folder) as (url, _):
        yield url


@contextlib.contextmanager
def running_server_process(
    flags: dict[str, object], folder: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`running_server`, also yielding the process (for what only its pid tells: memory)."""
    port = find_free_port()
    log_path = folder / "server.log"
    process = start_server_process({"--port": port, **flags}, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log_path)
        yield url, process
    finally:
        stop_server_process(process)
