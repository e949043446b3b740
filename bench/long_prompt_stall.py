"""Head-of-line blocking: how long short requests take while a long prompt is being prefilled.

Starts a real server with SmolLM2 and countdown, sends one long SmolLM2 chat prompt (about 32 KB,
~7,500 tokens, `max_tokens` 4, streamed), then after a delay one short countdown chat request and
one short SmolLM2 chat request (8 tokens each), and reports each request's time to first token
and total time. Before chunked prefill and the fair compute lock, the short requests waited for
the whole long prefill (issue 18: 40 s on an idle machine). Prints a table and writes JSON.

    python -m bench.long_prompt_stall [--long-kb 32] [--delay-s 1]
        [--out bench/results/long_prompt_stall.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.report import print_table, write_json
from bench.server_process import running_server

FILLER = "Every harbour keeps a ledger of the ships that came in, what they carried and when. "
COUNTDOWN_QUESTION = "countdown target=24 numbers=3,5,7,9"
REQUEST_TIMEOUT_S = 1200.0


@dataclass
class Timing:
    label: str
    sent_at_s: float  # after the long request was sent
    first_token_s: float | None  # time to first token, from when this request was sent
    total_s: float | None
    error: str | None = None


def chat(base_url: str, label: str, model: str, content: str, max_tokens: int, t0: float) -> Timing:
    """One streamed chat request; times its first content token and its end."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    sent = time.monotonic()
    first: float | None = None
    try:
        with httpx.stream(
            "POST", f"{base_url}/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S
        ) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if first is None and _has_content(line):
                    first = time.monotonic() - sent
    except httpx.HTTPError as exc:
        return Timing(label, round(sent - t0, 2), first, None, f"{type(exc).__name__}: {exc}")
    return Timing(label, round(sent - t0, 2), _round(first), round(time.monotonic() - sent, 2))


def _has_content(line: str) -> bool:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return False
    choices = json.loads(line[len("data: ") :]).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_scenario(base_url: str, args: argparse.Namespace) -> list[Timing]:
    long_text = (FILLER * (args.long_kb * 1024 // len(FILLER) + 1))[: args.long_kb * 1024]
    requests = [
        ("long smollm2", "smollm2-135m-instruct", long_text, 4, 0.0),
        ("short countdown", "countdown", COUNTDOWN_QUESTION, 8, args.delay_s),
        ("short smollm2", "smollm2-135m-instruct", "Name a colour.", 8, args.delay_s),
    ]
    results: dict[str, Timing] = {}
    t0 = time.monotonic()

    def send(label: str, model: str, content: str, max_tokens: int, delay: float) -> None:
        time.sleep(delay)
        results[label] = chat(base_url, label, model, content, max_tokens, t0)

    threads = [threading.Thread(target=send, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[label] for label, *_ in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-kb", type=int, default=32, help="size of the long prompt's text")
    parser.add_argument("--delay-s", type=float, default=1.0, help="when the short requests follow")
    parser.add_argument("--out", default="bench/results/long_prompt_stall.json")
    args = parser.parse_args()
    flags = {
        "--models": "smollm2-135m-instruct,countdown",
        "--queue-timeout-s": 3600,
        "--watch-interval-s": 0,
    }
    with tempfile.TemporaryDirectory() as folder, running_server(flags, Path(folder)) as url:
        load_before = os.getloadavg()[0]
        timings = run_scenario(url, args)
    print_table(
        ["request", "sent at s", "first token s", "total s", "error"],
        [(t.label, t.sent_at_s, t.first_token_s, t.total_s, t.error or "") for t in timings],
    )
    print(f"load average (1 min) at the start: {load_before:.2f} on {os.cpu_count()} CPUs")
    write_json(
        args.out,
        {"load_average_1m": load_before, "long_kb": args.long_kb, "rows": [asdict(t) for t in timings]},
    )


if __name__ == "__main__":
    main()
