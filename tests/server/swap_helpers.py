"""A real server on its own version store, and the ways a learner (or a disk) changes that store."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.models import resolve_model_dir
from engine.versions import CURRENT_FILE, Manifest, VersionStore, write_atomically
from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

POLICY = "countdown"
API_KEY = "sk-hot-swap-user"
ADMIN_KEY = "sk-hot-swap-admin"
PUZZLE = [{"role": "user", "content": "countdown target=93 numbers=4,7,25,50"}]


@dataclass(frozen=True)
class SwapServer:
    base_url: str
    store: VersionStore
    log_path: Path
    process: subprocess.Popen[bytes]

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_flags(port: int, folder: Path, models: str, watch_interval_s: float) -> dict[str, object]:
    return {
        "--port": port,
        "--models": models,
        "--model-store": folder / "versions",
        "--api-key": API_KEY,
        "--admin-key": ADMIN_KEY,
        "--watch-interval-s": watch_interval_s,
        "--trace-db": folder / "traces.sqlite3",
        "--num-threads": 1,
    }


def start_swap_server(
    folder: Path,
    models: str = POLICY,
    watch_interval_s: float = 0.0,
    extra_flags: dict[str, object] | None = None,
) -> SwapServer:
    """A ready server whose store is `folder/versions` (seeded on start if empty)."""
    port = find_free_port()
    log_path = folder / f"server-{port}.log"
    flags = server_flags(port, folder, models, watch_interval_s) | (extra_flags or {})
    process = start_server_process(flags, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log_path)
    except BaseException:
        stop_server_process(process)
        raise
    return SwapServer(base_url, VersionStore(folder / "versions"), log_path, process)


@contextmanager
def running_swap_server(
    folder: Path,
    models: str = POLICY,
    watch_interval_s: float = 0.0,
    extra_flags: dict[str, object] | None = None,
) -> Iterator[SwapServer]:
    server = start_swap_server(folder, models, watch_interval_s, extra_flags)
    try:
        yield server
    finally:
        stop_server_process(server.process)


def publish_folder(store: VersionStore, model_id: str, source: Path, make_current: bool = True) -> Manifest:
    """What the learner does: the next version, its parent the current one."""
    return store.publish(model_id, source, parent=store.current(model_id), make_current=make_current)


def publish_broken(store: VersionStore, model_id: str, how: str, scratch: Path) -> Manifest:
    """A candidate CURRENT names that must be refused. `sha256`: its weights changed after it was
    published; `load`: its files match the manifest but its config.json is not a config."""
    if how == "load":
        source = scratch / f"broken-{time.monotonic_ns()}"
        shutil.copytree(resolve_model_dir(model_id), source)
        (source / "config.json").write_text("{this is not json")
        return publish_folder(store, model_id, source)
    manifest = publish_folder(store, model_id, resolve_model_dir(model_id), make_current=False)
    weights = store.folder(model_id, manifest.version) / "model.safetensors"
    with weights.open("r+b") as handle:  # flip bytes inside the tensor data
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\x00\x01\x02\x03" * 64)
    point_current_at(store, model_id, manifest.version)
    return manifest


def point_current_at(store: VersionStore, model_id: str, version: int) -> None:
    """CURRENT.json naming `version` without the store's check (a learner bug, a bad disk)."""
    history = [v for v in store.history(model_id) if v != version] + [version]
    body = json.dumps({"version": version, "history": history}) + "\n"
    write_atomically(store.model_root(model_id) / CURRENT_FILE, body)


def chat(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post(
        "/v1/chat/completions", json={"model": POLICY, "messages": PUZZLE, "max_tokens": 8, **body}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def listed_version(http: httpx.Client, model_id: str = POLICY) -> str | None:
    listed = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    version: str | None = listed[model_id]["version"]
    return version


def read_metric(base_url: str, name: str, model: str | None = None) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == model:
                return float(sample.value)
    raise AssertionError(f"{name}{{model={model}}} is not in /metrics")


def wait_for(condition: Any, timeout_s: float = 30.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
