"""Retries against real 429s: a server that admits one request at a time, busy with a long
search, refuses a client without retries and lets a retrying one (sync and async) through."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.async_client import AsyncPonderClient
from clients.client import PonderAPIError, PonderClient
from clients.common import RetryPolicy
from engine.models import is_available
from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

PUZZLE = "countdown target=31 numbers=19,4,45,99"
LONG_SEARCH = {"strategy": "mcts", "budget_tokens": 2048, "prm": False, "seed": 1}  # ~3 s, idle
PATIENT = RetryPolicy(max_retries=240, backoff_s=0.1, max_backoff_s=0.5)  # waits up to ~2 min
pytestmark = pytest.mark.skipif(not is_available("countdown"), reason="countdown weights absent")


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("one_at_a_time")
    url = f"http://127.0.0.1:{(port := find_free_port())}"
    flags = {
        "--port": port,
        "--models": "countdown",
        "--max-concurrent-requests": 1,
        "--trace-db": folder / "traces.sqlite3",
        "--model-store": folder / "versions",
        "--watch-interval-s": 0,
        "--num-threads": 1,
    }
    process = start_server_process(flags, folder / "server.log")
    try:
        wait_until_ready(url, process, folder / "server.log")
        yield url
    finally:
        stop_server_process(process)


def num_refused(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ponder_http_requests_total" and sample.labels.get("status") == "429"
    )


def wait_until_busy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if "ponder_requests_in_flight 1.0" in text:
            return
        time.sleep(0.02)
    raise AssertionError("the long search never started")


def busy(url: str) -> threading.Thread:
    """A thread holding the server's only admission slot for a long search."""
    thread = threading.Thread(
        target=lambda: PonderClient(url).chat(PUZZLE, model="countdown", search=LONG_SEARCH), daemon=True
    )
    thread.start()
    wait_until_busy(url)
    return thread


@pytest.mark.parametrize("is_async", [False, True])
def test_a_retrying_client_waits_out_429s(one_at_a_time: str, is_async: bool) -> None:
    holder = busy(one_at_a_time)
    refused_before = num_refused(one_at_a_time)
    with PonderClient(one_at_a_time, retry=RetryPolicy(max_retries=0)) as impatient:
        with pytest.raises(PonderAPIError) as refused:
            impatient.chat(PUZZLE, model="countdown", max_tokens=8)
    assert refused.value.status == 429
    if is_async:

        async def ask() -> str:
            async with AsyncPonderClient(one_at_a_time, retry=PATIENT) as client:
                return (await client.chat(PUZZLE, model="countdown", max_tokens=8)).text

        text = asyncio.run(ask())
    else:
        with PonderClient(one_at_a_time, retry=PATIENT) as patient:
            text = "".join(patient.stream_chat(PUZZLE, model="countdown", max_tokens=8))
    assert text
    assert num_refused(one_at_a_time) - refused_before >= 2  # the impatient one's, and the patient one's
    holder.join(timeout=120)
