"""Hot swap through the admin routes, on a real server serving the Countdown policy and a PRM from
its own version store (the watcher is off here, so every swap is the one a test asks for)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.hot_swap import SwapTarget, run_hot_swap
from bench.load_clients import last_fingerprints, regressions, transitions
from engine.models import COUNTDOWN_DEFAULT_PRM, is_available, resolve_model_dir
from tests.server.swap_helpers import (
    ADMIN_KEY,
    API_KEY,
    POLICY,
    PUZZLE,
    SwapServer,
    chat,
    listed_version,
    publish_broken,
    publish_folder,
    read_metric,
    running_swap_server,
    wait_for,
)

PRM = COUNTDOWN_DEFAULT_PRM
pytestmark = pytest.mark.skipif(
    not (is_available(POLICY) and is_available(PRM)), reason="countdown weights absent"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwapServer]:
    with running_swap_server(tmp_path_factory.mktemp("hot_swap"), f"{POLICY},{PRM}") as running:
        yield running


@pytest.fixture
def http(server: SwapServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def reload(
    server: SwapServer, body: dict[str, str] | None = None, key: str | None = ADMIN_KEY
) -> httpx.Response:
    with server.client(key) as admin:
        return admin.post("/v1/admin/reload", json=body) if body else admin.post("/v1/admin/reload")


def rollback(server: SwapServer, model: str, key: str | None = ADMIN_KEY) -> httpx.Response:
    with server.client(key) as admin:
        return admin.post("/v1/admin/rollback", json={"model": model})


def publish_and_reload(server: SwapServer) -> str:
    """A new version of the policy (same weights, new label), swapped in; its label."""
    label = publish_folder(server.store, POLICY, resolve_model_dir(POLICY)).label
    response = reload(server, {"model": POLICY})
    assert response.status_code == 200, response.text
    assert response.json()["data"][0] | {"previous": None} == {
        "model": POLICY,
        "version": label,
        "previous": None,
        "swapped": True,
        "error": None,
    }
    return label


def stream_fingerprints(http: httpx.Client, path: str, body: dict[str, object]) -> list[str | None]:
    with http.stream("POST", path, json=body | {"stream": True}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]).get("system_fingerprint") for line in lines[:-1]]


def test_first_start_seeds_the_store_and_fingerprints_every_response(
    server: SwapServer, http: httpx.Client
) -> None:
    assert server.store.current(POLICY) is not None and server.store.current(PRM) is not None
    label = listed_version(http)
    assert label == f"{POLICY}-v{server.store.current(POLICY)}"
    assert chat(http)["system_fingerprint"] == label
    body = {"model": POLICY, "prompt": "countdown", "max_tokens": 4}
    assert http.post("/v1/completions", json=body).json()["system_fingerprint"] == label
    assert set(stream_fingerprints(http, "/v1/completions", body)) == {label}
    chat_body = {"model": POLICY, "messages": PUZZLE, "max_tokens": 4}
    assert set(stream_fingerprints(http, "/v1/chat/completions", chat_body)) == {label}
    search = {"strategy": "best_of_n", "n": 2, "budget_tokens": 80, "prm": False}
    assert chat(http, search=search)["system_fingerprint"] == label
    assert set(stream_fingerprints(http, "/v1/chat/completions", chat_body | {"search": search})) == {label}


def test_reload_serves_the_published_version(server: SwapServer, http: httpx.Client) -> None:
    old = listed_version(http)
    new = publish_and_reload(server)
    assert new != old
    assert chat(http)["system_fingerprint"] == new
    assert listed_version(http) == new
    assert read_metric(server.base_url, "ponder_model_version", POLICY) == server.store.current(POLICY)
    wait_for(
        lambda: read_metric(server.base_url, "ponder_engines_retiring") == 0, what="the old engine to close"
    )
    assert f"closed the replaced engine of {POLICY} {old}" in server.log()
    again = reload(server).json()["data"]  # nothing new: every model says so
    assert {(d["model"], d["swapped"], d["version"]) for d in again} == {
        (POLICY, False, new),
        (PRM, False, listed_version(http, PRM)),
    }


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/admin/reload", {}), ("/v1/admin/rollback", {"model": POLICY})]
)
@pytest.mark.parametrize(("key", "status"), [(None, 401), (API_KEY, 403), ("sk-someone-else", 401)])
def test_admin_routes_need_the_admin_key(
    server: SwapServer, path: str, body: dict[str, str], key: str | None, status: int
) -> None:
    before = server.store.history(POLICY)
    with server.client(key) as client:
        response = client.post(path, json=body)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert server.store.history(POLICY) == before  # a refused rollback changed nothing


@pytest.mark.parametrize(
    ("how", "reason"), [("sha256", "does not match its manifest's sha256"), ("load", "config.json")]
)
def test_a_broken_candidate_is_refused_and_the_old_version_keeps_serving(
    server: SwapServer, http: httpx.Client, tmp_path: Path, how: str, reason: str
) -> None:
    serving = listed_version(http)
    bad = publish_broken(server.store, POLICY, how, tmp_path)
    response = reload(server, {"model": POLICY})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "version_refused"
    assert f"{bad.label} refused" in error["message"] and reason in error["message"]
    assert serving in error["message"]  # and says what still serves
    assert f"{bad.label} refused" in server.log() and reason in server.log()
    assert chat(http)["system_fingerprint"] == serving
    assert listed_version(http) == serving
    assert rollback(server, POLICY).json()["data"][0]["version"] == serving  # CURRENT points back


def test_a_swap_leaves_no_kv_of_the_old_version_in_the_cache(server: SwapServer, http: httpx.Client) -> None:
    body = {"model": POLICY, "prompt": "countdown target=71 numbers=3,9,40,60\n", "max_tokens": 4}

    def cached_tokens() -> tuple[int, str]:
        reply = http.post("/v1/completions", json=body).json()
        return reply["usage"]["prompt_tokens_details"]["cached_tokens"], reply["system_fingerprint"]

    cached_tokens()
    assert cached_tokens()[0] > 0  # the old version's cache holds the prompt
    new = publish_and_reload(server)
    assert read_metric(server.base_url, "ponder_cache_live_nodes", POLICY) == 0
    assert read_metric(server.base_url, "ponder_cache_cached_tokens", POLICY) == 0
    assert cached_tokens() == (0, new)  # computed afresh by the new weights
    assert cached_tokens()[0] > 0  # and cached again, under the new version


def test_rollback_serves_the_previous_version(server: SwapServer, http: httpx.Client) -> None:
    first = publish_and_reload(server)
    second = publish_and_reload(server)
    response = rollback(server, POLICY)
    assert response.status_code == 200, response.text
    assert response.json()["data"][0] | {"error": None} == {
        "model": POLICY,
        "version": first,
        "previous": second,
        "swapped": True,
        "error": None,
    }
    assert chat(http)["system_fingerprint"] == first == listed_version(http)
    assert f"{POLICY}-v{server.store.current(POLICY)}" == first


def test_a_prm_swaps_too_and_rollback_needs_an_earlier_version(
    server: SwapServer, http: httpx.Client
) -> None:
    if len(server.store.history(PRM)) == 1:
        response = rollback(server, PRM)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "nothing_to_roll_back")
    search = {"strategy": "best_of_n", "n": 2, "budget_tokens": 120, "prm": True}
    assert chat(http, search=search)["search"]["prm_calls"] >= 1  # the PRM loaded, from the store
    label = publish_folder(server.store, PRM, resolve_model_dir(PRM)).label
    response = reload(server, {"model": PRM})
    assert response.status_code == 200 and response.json()["data"][0]["version"] == label
    assert listed_version(http, PRM) == label
    assert read_metric(server.base_url, "ponder_model_version", PRM) == server.store.current(PRM)
    assert chat(http, search=search)["search"]["prm_calls"] >= 1


@pytest.mark.parametrize(("model", "status"), [("gpt-4o", 404), ("smollm2-135m-instruct", 404)])
def test_rollback_of_a_model_not_served_is_404(server: SwapServer, model: str, status: int) -> None:
    assert rollback(server, model).status_code == status


def test_hot_swap_under_load(server: SwapServer) -> None:
    """The bench, shorter: clients of every kind run while a version is published and swapped in;
    none fails, no stream is cut, and each client's fingerprint moves old -> new exactly once."""
    with server.client() as http:
        old = listed_version(http)
    target = SwapTarget(server.base_url, server.store.root, ADMIN_KEY, API_KEY, POLICY)
    num_clients = 8
    report = asyncio.run(run_hot_swap(target, num_clients, 16.0, 6.0, use_prm=False, use_watcher=False))
    new = report.swap["label"]
    assert report.swap["reload_status"] == 200, report.swap
    assert report.num_errors == 0, report.summary()["first_errors"]
    assert report.num_dropped == 0
    assert regressions(report.outcomes) == 0
    assert {o.fingerprint for o in report.outcomes} == {old, new}
    assert set(last_fingerprints(report.outcomes).values()) == {new}
    assert transitions(report.outcomes) == num_clients
    assert {o.kind for o in report.outcomes} >= {"chat_stream", "completion", "search", "search_stream"}
