"""The store watcher, and restarts: a server picks up what the learner publishes without being
asked, refuses a broken candidate once, and after a kill -9 mid-swap serves the last good version."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.models import is_available, resolve_model_dir
from tests.server.swap_helpers import (
    ADMIN_KEY,
    POLICY,
    SwapServer,
    chat,
    listed_version,
    publish_broken,
    publish_folder,
    read_metric,
    running_swap_server,
    start_swap_server,
    wait_for,
)

WATCH_INTERVAL_S = 0.5
pytestmark = pytest.mark.skipif(not is_available(POLICY), reason="countdown weights absent")


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwapServer]:
    folder = tmp_path_factory.mktemp("watched")
    with running_swap_server(folder, POLICY, WATCH_INTERVAL_S) as running:
        yield running


def test_the_watcher_serves_a_publish_unasked(watched: SwapServer) -> None:
    label = publish_folder(watched.store, POLICY, resolve_model_dir(POLICY)).label
    with watched.client() as http:
        wait_for(lambda: listed_version(http) == label, what=f"the watcher to serve {label}")
        assert chat(http)["system_fingerprint"] == label
    assert read_metric(watched.base_url, "ponder_model_version", POLICY) == watched.store.current(POLICY)


def test_the_watcher_refuses_a_broken_candidate_once(watched: SwapServer, tmp_path: Path) -> None:
    with watched.client() as http:
        serving = listed_version(http)
        bad = publish_broken(watched.store, POLICY, "sha256", tmp_path)
        refusal = f"{bad.label} refused"
        wait_for(lambda: refusal in watched.log(), what="the refusal in the log")
        time.sleep(6 * WATCH_INTERVAL_S)  # polls that must not try it again
        assert watched.log().count(refusal) == 1
        assert "does not match its manifest's sha256" in watched.log()
        assert listed_version(http) == serving and chat(http)["system_fingerprint"] == serving
        good = publish_folder(watched.store, POLICY, resolve_model_dir(POLICY)).label
        wait_for(lambda: listed_version(http) == good, what="the next good version to be served")


def kill_9(server: SwapServer) -> None:
    server.process.kill()
    server.process.wait()


def test_kill_9_during_a_swap_restarts_on_the_last_good_version(tmp_path: Path) -> None:
    server = start_swap_server(tmp_path)
    try:
        published = publish_folder(server.store, POLICY, resolve_model_dir(POLICY)).label

        def reload() -> None:
            try:
                with server.client(ADMIN_KEY) as admin:
                    admin.post("/v1/admin/reload")
            except httpx.TransportError:
                pass  # the server is killed under it

        threading.Thread(target=reload, daemon=True).start()
        wait_for(lambda: f"loading {published}" in server.log(), what="the swap to start")
    finally:
        kill_9(server)
    restarted = start_swap_server(tmp_path)  # CURRENT names a complete version: it is served
    try:
        with restarted.client() as http:
            assert listed_version(http) == published == chat(http)["system_fingerprint"]
        bad = publish_broken(restarted.store, POLICY, "sha256", tmp_path)
    finally:
        kill_9(restarted)
    with running_swap_server(tmp_path) as again, again.client() as http:  # CURRENT is damaged
        assert listed_version(http) == published == chat(http)["system_fingerprint"]
        assert f"not serving version {bad.version}" in again.log()
        assert f"serving {published}, the newest version that verifies" in again.log()
