"""Queue timeout: an admitted request the engine does not begin within `queue_timeout_s` gets a
503 with `Retry-After` (streamed or not) and leaves the engine; queue time and time to first
token are exported as histograms.

A real server with a batch of one sequence: a long stream holds the batch, so every other
request waits in the engine's queue.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

MODEL = "smollm2-135m-instruct"
QUEUE_TIMEOUT_S = 1.0
SLACK_S = 10.0  # a busy 2-core machine
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = find_free_port()
    log_path = tmp_path_factory.mktemp("queue") / "server.log"
    flags = {"--port": port, "--models": MODEL, "--max-batch-size": 1, "--queue-timeout-s": QUEUE_TIMEOUT_S}
    process: subprocess.Popen[bytes] = start_server_process(flags, log_path)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server_process(process)


def chat(**fields: object) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4} | fields


def metric(base_url: str, name: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model", MODEL) == MODEL:
                return float(sample.value)
    return 0.0


def assert_queue_timeout(response: httpx.Response, waited_s: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "queue_timeout"
    assert int(response.headers["Retry-After"]) >= 1
    assert QUEUE_TIMEOUT_S <= waited_s < QUEUE_TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("is_streaming", [False, True], ids=["plain", "stream"])
def test_request_queued_past_the_timeout_gets_503(server: str, is_streaming: bool) -> None:
    long_stream = chat(max_tokens=1000, ignore_eos=True, stream=True)
    with httpx.stream("POST", f"{server}{CHAT}", json=long_stream, timeout=60) as held:
        lines = held.iter_lines()
        next(line for line in lines if '"content":"' in line and '"content":""' not in line)  # it runs
        started = time.monotonic()
        response = httpx.post(f"{server}{CHAT}", json=chat(stream=is_streaming), timeout=60)
        assert_queue_timeout(response, time.monotonic() - started)
        assert metric(server, "ponder_cache_running_sequences") == 1  # the refused one left the engine
    # The batch is free again: a request is served, and its wait is measured.
    queued_before = metric(server, "ponder_queue_seconds_count")
    first_tokens_before = metric(server, "ponder_time_to_first_token_seconds_count")
    with httpx.stream("POST", f"{server}{CHAT}", json=chat(stream=True), timeout=60) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and "error" not in json.loads(events[-2].removeprefix("data: "))
    assert metric(server, "ponder_queue_seconds_count") == queued_before + 1
    assert metric(server, "ponder_time_to_first_token_seconds_count") == first_tokens_before + 1
