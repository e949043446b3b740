"""Traces through the real server: what a search records, listing, reading and deleting them,
whose traces a key may see, `--record-traces all|off`, and a clean store after shutdown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.models import COUNTDOWN_DEFAULT_PRM, is_available
from server.trace_store import TraceStore
from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

PRM_SERVED = is_available(COUNTDOWN_DEFAULT_PRM)
API_KEY, ADMIN_KEY = "sk-trace-user", "sk-trace-admin"
PUZZLE = [{"role": "user", "content": "countdown target=93 numbers=4,7,25,50"}]
SEARCH = {"strategy": "best_of_n", "budget_tokens": 128, "prm": PRM_SERVED, "seed": 1}
pytestmark = pytest.mark.skipif(not is_available("countdown"), reason="countdown weights absent")


class Server:
    """A running `python -m server` and the SQLite file its traces go to."""

    def __init__(self, folder: Path, **flags: object) -> None:
        port = find_free_port()
        models = "countdown" + f",{COUNTDOWN_DEFAULT_PRM}" * PRM_SERVED
        self.db = folder / "traces.sqlite3"
        all_flags = {"--port": port, "--models": models, "--trace-db": self.db, "--num-threads": 1}
        all_flags.update({f"--{name.replace('_', '-')}": value for name, value in flags.items()})
        self.url = f"http://127.0.0.1:{port}"
        self.process = start_server_process(all_flags, folder / "server.log")
        wait_until_ready(self.url, self.process, folder / "server.log")

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=120, **kwargs)

    def search(self, key: str | None = None, **search: Any) -> dict[str, Any]:
        body = {"model": "countdown", "messages": PUZZLE, "search": {**SEARCH, **search}}
        response = self.call("POST", "/v1/chat/completions", key, json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stop(self) -> None:
        stop_server_process(self.process)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("traces_keyed"), api_key=API_KEY, admin_key=ADMIN_KEY)
    try:
        yield server
    finally:
        server.stop()


def test_a_search_records_its_prompt_settings_replies_and_outcomes(keyed: Server) -> None:
    reply = keyed.search(API_KEY, trace=True)
    trace = keyed.call("GET", f"/v1/traces/{reply['search']['trace_id']}", API_KEY).json()
    assert (trace["object"], trace["model"], trace["strategy"]) == ("search.trace", "countdown", "best_of_n")
    assert trace["messages"] == PUZZLE and trace["owner"] != ""
    assert trace["settings"]["budget_tokens"] == 128 and trace["settings"]["verifier"] is False
    assert trace["answer"] == reply["choices"][0]["message"]["content"]
    assert trace["replies"] and trace["answer"] in {r["text"] for r in trace["replies"]}
    # search.verifier was off, yet the countdown task's verifier judged every reply
    assert all(isinstance(r["is_verified"], bool) for r in trace["replies"])
    assert isinstance(trace["is_verified"], bool)
    assert all(len(r["step_scores"]) == len(r["steps"]) * PRM_SERVED for r in trace["replies"])
    assert trace["tree"]["stats"]["num_tokens_generated"] <= 128


def test_a_trace_is_listed_then_deleted_for_good(keyed: Server) -> None:
    trace_id = keyed.search(API_KEY, trace=True)["search"]["trace_id"]
    listing = keyed.call("GET", "/v1/traces", API_KEY, params={"model": "countdown", "limit": 100}).json()
    assert listing["object"] == "list" and trace_id in {t["id"] for t in listing["data"]}
    assert all("tree" not in t and t["replies"] for t in listing["data"])
    assert keyed.call("GET", "/v1/traces", API_KEY, params={"model": "other"}).json()["data"] == []
    deleted = keyed.call("DELETE", f"/v1/traces/{trace_id}", API_KEY)
    assert deleted.json() == {"id": trace_id, "object": "search.trace.deleted", "deleted": True}
    for method in ("GET", "DELETE"):
        gone = keyed.call(method, f"/v1/traces/{trace_id}", API_KEY)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "trace_not_found"


def test_pages_of_traces_cover_each_once(keyed: Server) -> None:
    made = {keyed.search(API_KEY, trace=True, strategy="greedy")["search"]["trace_id"] for _ in range(3)}
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = keyed.call("GET", "/v1/traces", API_KEY, params=params).json()
        seen.extend(t["id"] for t in page["data"])
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert made <= set(seen) and len(seen) == len(set(seen))


def test_the_user_key_reads_its_own_traces_and_the_admin_key_reads_all(keyed: Server) -> None:
    users = keyed.search(API_KEY, trace=True)["search"]["trace_id"]
    admins = keyed.search(ADMIN_KEY, trace=True)["search"]["trace_id"]
    for key in (API_KEY, ADMIN_KEY):
        assert keyed.call("GET", f"/v1/traces/{users}", key).status_code == 200
    assert keyed.call("GET", f"/v1/traces/{admins}", ADMIN_KEY).status_code == 200
    for method in ("GET", "DELETE"):  # as absent as a trace that never was
        hidden = keyed.call(method, f"/v1/traces/{admins}", API_KEY)
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "trace_not_found"
    listed = {
        key: {t["id"] for t in keyed.call("GET", "/v1/traces", key).json()["data"]}
        for key in (API_KEY, ADMIN_KEY)
    }
    assert users in listed[API_KEY] and admins not in listed[API_KEY]
    assert {users, admins} <= listed[ADMIN_KEY]
    assert keyed.call("GET", f"/v1/traces/{users}").status_code == 401


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"after": "x"}, "after"),
    ],
)
def test_bad_listing_params_are_400_naming_them(keyed: Server, params: dict[str, Any], param: str) -> None:
    response = keyed.call("GET", "/v1/traces", API_KEY, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_record_all_keeps_searches_that_did_not_ask_and_shutdown_checkpoints(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, record_traces="all")
    try:
        plain = server.search()["search"]["trace_id"]
        streamed = _streamed_summary(server)["trace_id"]
        for trace_id in (plain, streamed):
            assert server.call("GET", f"/v1/traces/{trace_id}").json()["owner"] == ""
    finally:
        server.stop()
    wal = Path(f"{server.db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the lifespan checkpointed the WAL
    store = TraceStore(server.db)
    assert {r.id for r in store.iter_records("countdown")} == {plain, streamed}
    store.close()


def _streamed_summary(server: Server) -> dict[str, Any]:
    body = {"model": "countdown", "messages": PUZZLE, "stream": True, "search": SEARCH}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=120) as response:
        chunks = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: {")]
    return dict(json.loads(chunks[-1])["search"])


def test_record_off_refuses_search_trace_and_records_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path, record_traces="off")
    try:
        body = {"model": "countdown", "messages": PUZZLE, "search": {**SEARCH, "trace": True}}
        refused = server.call("POST", "/v1/chat/completions", json=body)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "search.trace"
        assert "trace_id" not in server.search()["search"]
        assert server.call("GET", "/v1/traces").json()["data"] == []
    finally:
        server.stop()
