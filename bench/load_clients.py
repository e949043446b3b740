"""Closed-loop HTTP clients for a live ponder server: each sends one request at a time, cycling
through a mix of plain and searching, streaming and non-streaming requests, and records what
came back (status, `system_fingerprint`, whether a stream ended properly, latency).

Used by `bench.hot_swap` and by the hot-swap test, which runs a short version of the bench.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

PUZZLE = "countdown target=93 numbers=4,7,25,50"
MESSAGES = [{"role": "user", "content": PUZZLE}]
MAX_TOKENS = 24
SEARCH = {"strategy": "best_of_n", "n": 2, "budget_tokens": 120, "max_step_tokens": 24}
REQUEST_KINDS = ("chat", "chat_stream", "completion", "completion_stream", "search", "search_stream")
VERSION_SUFFIX = re.compile(r"-v(\d+)$")


@dataclass(frozen=True)
class Outcome:
    """One request as its client saw it."""

    client: int
    kind: str
    started_s: float  # since the load began
    latency_s: float
    fingerprint: str | None  # the one fingerprint of the response (a stream must carry one)
    error: str | None = None  # non-200, an error event, a transport failure, mixed fingerprints
    is_dropped: bool = False  # a stream that ended without a finish_reason or without [DONE]


def request_body(kind: str, model: str, use_prm: bool) -> tuple[str, dict[str, Any]]:
    """The route and body of one request of `kind`."""
    is_streaming = kind.endswith("_stream")
    body: dict[str, Any] = {"model": model, "stream": is_streaming}
    if kind.startswith("completion"):
        return "/v1/completions", {**body, "prompt": PUZZLE, "max_tokens": MAX_TOKENS}
    body["messages"] = MESSAGES
    if kind.startswith("search"):
        return "/v1/chat/completions", {**body, "search": {**SEARCH, "prm": use_prm}}
    return "/v1/chat/completions", {**body, "max_tokens": MAX_TOKENS}


def version_number(fingerprint: str | None) -> int | None:
    match = VERSION_SUFFIX.search(fingerprint or "")
    return None if match is None else int(match.group(1))


async def send_one(
    http: httpx.AsyncClient, route: str, body: dict[str, Any]
) -> tuple[str | None, str | None, bool]:
    """(fingerprint, error, is_dropped) of one request."""
    if not body["stream"]:
        response = await http.post(route, json=body)
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}: {response.text[:200]}", False
        return response.json().get("system_fingerprint"), None, False
    fingerprints: set[str | None] = set()
    finishes, is_done = 0, False
    async with http.stream("POST", route, json=body) as response:
        if response.status_code != 200:
            return None, f"HTTP {response.status_code}: {(await response.aread())[:200]!r}", False
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                is_done = True
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if "error" in chunk:
                return None, f"error event: {chunk['error'].get('message')}", False
            fingerprints.add(chunk.get("system_fingerprint"))
            finishes += sum(c.get("finish_reason") is not None for c in chunk.get("choices", []))
    if len(fingerprints) != 1:
        return (
            None,
            f"a stream carried {len(fingerprints)} fingerprints: {sorted(map(str, fingerprints))}",
            False,
        )
    return fingerprints.pop(), None, not (is_done and finishes >= 1)


async def run_client(
    client: int, http: httpx.AsyncClient, model: str, use_prm: bool, started: float, deadline: float
) -> list[Outcome]:
    """Requests one after another until `deadline` (monotonic), starting at a different kind."""
    outcomes: list[Outcome] = []
    turn = client
    while time.monotonic() < deadline:
        kind = REQUEST_KINDS[turn % len(REQUEST_KINDS)]
        turn += 1
        route, body = request_body(kind, model, use_prm)
        begin = time.monotonic()
        try:
            fingerprint, error, is_dropped = await send_one(http, route, body)
        except (httpx.HTTPError, json.JSONDecodeError) as exc:  # a cut connection, a garbled event
            fingerprint, error, is_dropped = None, f"{type(exc).__name__}: {exc}", body["stream"]
        end = time.monotonic()
        outcomes.append(Outcome(client, kind, begin - started, end - begin, fingerprint, error, is_dropped))
    return outcomes


def regressions(outcomes: list[Outcome]) -> int:
    """How often one client's fingerprint went back to an older version than its last one."""
    count = 0
    by_client: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        by_client.setdefault(outcome.client, []).append(outcome)
    for seen in by_client.values():
        numbers = [
            n
            for o in sorted(seen, key=lambda o: o.started_s)
            if (n := version_number(o.fingerprint)) is not None
        ]
        count += sum(later < earlier for earlier, later in zip(numbers, numbers[1:], strict=False))
    return count


def transitions(outcomes: list[Outcome]) -> int:
    """How many times a client's fingerprint changed between consecutive answered requests."""
    count = 0
    for client in {o.client for o in outcomes}:
        seen = [
            o.fingerprint
            for o in sorted(outcomes, key=lambda o: o.started_s)
            if o.client == client and o.fingerprint
        ]
        count += sum(a != b for a, b in zip(seen, seen[1:], strict=False))
    return count


def last_fingerprints(outcomes: list[Outcome]) -> dict[int, str | None]:
    """Each client's fingerprint on its last answered request."""
    last: dict[int, str | None] = {}
    for outcome in sorted(outcomes, key=lambda o: o.started_s):
        if outcome.fingerprint is not None:
            last[outcome.client] = outcome.fingerprint
    return last


async def run_clients(
    base_url: str, headers: dict[str, str], model: str, num_clients: int, seconds: float, use_prm: bool
) -> list[Outcome]:
    """`num_clients` closed-loop clients for `seconds`; every outcome, in no particular order."""
    limits = httpx.Limits(max_connections=num_clients + 4)
    timeout = httpx.Timeout(300.0, connect=10.0)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=timeout) as http:
        started = time.monotonic()
        deadline = started + seconds
        per_client = await asyncio.gather(
            *(run_client(i, http, model, use_prm, started, deadline) for i in range(num_clients))
        )
    return [outcome for outcomes in per_client for outcome in outcomes]
