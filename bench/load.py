"""Load: N closed-loop clients for a fixed time, plus one client sending a long prompt throughout.

    python -m bench.load [--clients 8] [--seconds 60] [--url http://127.0.0.1:8000 --api-key K]
        [--pid PID] [--long-prompt-kb 30] [--threads N] [--out bench/results/load.json]

Without --url it starts `python -m server` (countdown, its checker and smollm2-135m-instruct, with
an API key) and stops it at the end; with --url it loads a running server (RSS needs --pid).
The short clients cycle through plain and streaming Countdown chats, best-of-N searches and
plain smollm2-135m-instruct chats (`bench.load_clients` builds the Countdown bodies); the
long-prompt client sends a ~30 KB prompt to smollm2-135m-instruct with max_tokens 4, again and
again, which is what a head-of-line stall needs to show. It prints, per request type, the count,
errors by status, p50/p99 latency and time to first token (streams), then the server's RSS
before and after, and writes every sample to the JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from bench.load_clients import request_body
from bench.load_stats import TABLE_HEADERS, Sample, summarize, table_row
from bench.report import print_table, write_json
from bench.server_process import running_server_process

API_KEY = "sk-bench-load"
POLICY, PRM, CHAT_MODEL = "countdown", "countdown-checker", "smollm2-135m-instruct"
SHORT_KINDS = ("plain", "stream", "search", "smollm_plain")
LONG_KIND = "long_prompt"
LONG_PROMPT_SENTENCE = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
HTTP_TIMEOUT = httpx.Timeout(600.0, connect=10.0)  # a long prefill on a busy CPU takes minutes


def long_prompt(num_kb: float) -> str:
    """About `num_kb` KB of plain English (roughly 4 bytes a token for SmolLM2)."""
    repeats = max(1, int(num_kb * 1024 / len(LONG_PROMPT_SENTENCE)))
    return LONG_PROMPT_SENTENCE * repeats + "\nSummarise the text above in one word."


def body_for(kind: str, prompt_kb: float) -> tuple[str, dict[str, Any]]:
    """The route and JSON body of one request of `kind`."""
    if kind == "plain":
        return request_body("chat", POLICY, use_prm=False)
    if kind == "stream":
        return request_body("chat_stream", POLICY, use_prm=False)
    if kind == "search":
        return request_body("search", POLICY, use_prm=False)
    if kind == "smollm_plain":
        messages = [{"role": "user", "content": "Name one colour."}]
        return "/v1/chat/completions", {"model": CHAT_MODEL, "messages": messages, "max_tokens": 16}
    if kind == LONG_KIND:
        return "/v1/completions", {"model": CHAT_MODEL, "prompt": long_prompt(prompt_kb), "max_tokens": 4}
    raise ValueError(f"unknown request kind {kind!r}; valid kinds: {[*SHORT_KINDS, LONG_KIND]}")


async def timed_request(http: httpx.AsyncClient, kind: str, prompt_kb: float, started: float) -> Sample:
    """Send one request of `kind`; its latency, time to first text (streams), status and error."""
    route, body = body_for(kind, prompt_kb)
    begin = time.monotonic()
    status: int | None = None
    ttft: float | None = None
    error: str | None = None
    try:
        async with http.stream("POST", route, json=body) as response:
            status = response.status_code
            if status != 200:
                error = (await response.aread()).decode(errors="replace")[:200]
            elif body.get("stream"):
                ttft, error = await _read_stream(response, begin)
            else:
                await response.aread()
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    end = time.monotonic()
    return Sample(kind, begin - started, end - begin, status, ttft, error)


async def _read_stream(response: httpx.Response, begin: float) -> tuple[float | None, str | None]:
    """(time to the first chunk carrying text, error) of an SSE response; an error event, or a
    stream that ends without `[DONE]`, is an error."""
    ttft: float | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            return ttft, None
        chunk = json.loads(line.removeprefix("data: "))
        if "error" in chunk:
            return ttft, f"error event: {chunk['error'].get('message')}"
        has_text = any(c.get("delta", {}).get("content") or c.get("text") for c in chunk.get("choices", []))
        if ttft is None and has_text:
            ttft = time.monotonic() - begin
    return ttft, "the stream ended without [DONE]"


async def run_client(
    http: httpx.AsyncClient,
    kinds: tuple[str, ...],
    first: int,
    prompt_kb: float,
    started: float,
    deadline: float,
) -> list[Sample]:
    """One request after another until `deadline` (monotonic), cycling `kinds` from `first`."""
    samples: list[Sample] = []
    turn = first
    while time.monotonic() < deadline:
        samples.append(await timed_request(http, kinds[turn % len(kinds)], prompt_kb, started))
        turn += 1
    return samples


async def run_load(
    base_url: str, api_key: str | None, num_clients: int, seconds: float, prompt_kb: float
) -> list[Sample]:
    """`num_clients` short clients and one long-prompt client for `seconds`; every sample."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=num_clients + 4)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=HTTP_TIMEOUT
    ) as http:
        started = time.monotonic()
        deadline = started + seconds
        clients = [run_client(http, SHORT_KINDS, i, prompt_kb, started, deadline) for i in range(num_clients)]
        clients.append(run_client(http, (LONG_KIND,), 0, prompt_kb, started, deadline))
        per_client = await asyncio.gather(*clients)
    return [sample for samples in per_client for sample in samples]


def rss_mib(pid: int | None) -> float | None:
    """The resident set of process `pid` in MiB (Linux /proc); None when unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def measure(args: argparse.Namespace, base_url: str, api_key: str | None, pid: int | None) -> dict[str, Any]:
    """The load against `base_url`, with the server's RSS before and after."""
    rss_before = rss_mib(pid)
    samples = asyncio.run(run_load(base_url, api_key, args.clients, args.seconds, args.long_prompt_kb))
    return {"samples": samples, "rss_before_mib": rss_before, "rss_after_mib": rss_mib(pid)}


def server_flags(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    flags: dict[str, object] = {
        "--models": f"{POLICY},{PRM},{CHAT_MODEL}",
        "--api-key": API_KEY,
        "--trace-db": folder / "traces.sqlite3",
        "--model-store": folder / "versions",
        "--watch-interval-s": 0,
        "--max-concurrent-requests": max(64, args.clients + 1),
        "--log-level": "warning",
    }
    if args.threads is not None:
        flags["--num-threads"] = args.threads
    return flags


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    samples: list[Sample] = result["samples"]
    rows = summarize(samples, [*SHORT_KINDS, LONG_KIND])
    print_table(TABLE_HEADERS, [table_row(r) for r in rows])
    for key in ("rss_before_mib", "rss_after_mib"):
        value = result[key]
        print(f"{key}: {'unknown (pass --pid)' if value is None else f'{value:.1f}'}")
    config = {
        "clients": args.clients,
        "seconds": args.seconds,
        "long_prompt_kb": args.long_prompt_kb,
        "url": args.url,
    }
    write_json(
        args.out,
        {
            "config": config,
            "rows": [asdict(r) for r in rows],
            "rss_before_mib": result["rss_before_mib"],
            "rss_after_mib": result["rss_after_mib"],
            "samples": [asdict(s) for s in samples],
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8, help="short-request clients (plus one long)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long clients start new requests")
    parser.add_argument("--url", help="load this running server instead of starting one")
    parser.add_argument("--api-key", help="the running server's API key (with --url)")
    parser.add_argument("--pid", type=int, help="the running server's pid, for its RSS (with --url)")
    parser.add_argument("--long-prompt-kb", type=float, default=30.0)
    parser.add_argument("--threads", type=int, help="torch threads per engine of a started server")
    parser.add_argument("--out", default="bench/results/load.json")
    args = parser.parse_args(argv)
    if args.url:
        result = measure(args, args.url.rstrip("/"), args.api_key, args.pid)
    else:
        with tempfile.TemporaryDirectory(prefix="ponder-load-") as tmp:
            with running_server_process(server_flags(args, Path(tmp)), Path(tmp)) as (url, process):
                result = measure(args, url, API_KEY, process.pid)
    report(args, result)


if __name__ == "__main__":
    main()
