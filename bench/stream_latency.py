"""How live a streamed search is: time to first chunk and the gaps between chunks, per strategy.

    python -m bench.stream_latency [--problems 10] [--budget 1024]
        [--strategies greedy,best_of_n,self_consistency,beam,dvts,mcts,revise] [--prm countdown-prm]

Starts a real server (the bundled `countdown` policy and its PRM where present), then streams
one search per held-out dev problem and strategy, one at a time, with the official `openai`
client, timing every chunk on arrival from the request's start. Per strategy:
- `first`: time to the first chunk after the role chunk (ponder's first `progress` event);
- `first_event`: to the first tree event (a node expanded);
- `first_reasoning`: to the first `reasoning_content`;
- `gap`: every gap between consecutive chunks, from the request's start until the answer
  (`content`); p50 and p99 over all gaps of all problems, and the largest.
The issue's bounds: `first` at most 1 s and the p99 gap at most 0.5 s, on an otherwise idle
machine. Writes bench/results/stream_latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai

from bench.report import print_table, write_json
from bench.server_process import running_server
from engine.models import COUNTDOWN_DEFAULT_PRM, is_available
from rewards.countdown.problems import dev_problems, format_prompt
from search.registry import STRATEGIES

RESULTS = Path(__file__).resolve().parent / "results" / "stream_latency.json"
POLICY = "countdown"
SEED = 0


@dataclass
class StreamTiming:
    """One streamed search, as the client saw it (seconds from the request's start)."""

    strategy: str
    problem: str
    first: float | None = None
    first_event: float | None = None
    first_reasoning: float | None = None
    answer: float | None = None
    total: float = 0.0
    num_chunks: int = 0
    gaps: list[float] = field(default_factory=list)  # consecutive chunks, until the answer


def time_stream(client: openai.OpenAI, strategy: str, prompt: str, budget: int, prm: bool) -> StreamTiming:
    """Stream one search and time its chunks."""
    timing = StreamTiming(strategy, prompt)
    search = {"strategy": strategy, "budget_tokens": budget, "prm": prm, "seed": SEED}
    began = last = time.perf_counter()
    stream = client.chat.completions.create(
        model=POLICY,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        extra_body={"search": search},
    )
    for chunk in stream:
        now = time.perf_counter() - began
        timing.num_chunks += 1
        if timing.answer is None:
            timing.gaps.append(now - last)
        last = now
        delta = chunk.choices[0].delta if chunk.choices else None
        extra = (delta.model_extra or {}) if delta is not None else {}
        if delta is not None and delta.role is None and timing.first is None:
            timing.first = now
        if extra.get("search_event", {}).get("kind") == "expand" and timing.first_event is None:
            timing.first_event = now
        if extra.get("reasoning_content") and timing.first_reasoning is None:
            timing.first_reasoning = now
        if delta is not None and delta.content and timing.answer is None:
            timing.answer = now
    timing.total = time.perf_counter() - began
    return timing


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


def summarise(strategy: str, timings: list[StreamTiming]) -> dict[str, Any]:
    def seconds(name: str, q: int) -> float | None:
        values = [getattr(t, name) for t in timings if getattr(t, name) is not None]
        return percentile(values, q)

    gaps = [gap for t in timings for gap in t.gaps]
    return {
        "strategy": strategy,
        "num_streams": len(timings),
        "first_p50_s": seconds("first", 50),
        "first_p99_s": seconds("first", 99),
        "first_event_p50_s": seconds("first_event", 50),
        "first_reasoning_p50_s": seconds("first_reasoning", 50),
        "gap_p50_s": percentile(gaps, 50),
        "gap_p99_s": percentile(gaps, 99),
        "gap_max_s": max(gaps, default=None),
        "answer_p50_s": seconds("answer", 50),
        "chunks_p50": statistics.median(t.num_chunks for t in timings),
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--strategies", default=",".join(sorted(STRATEGIES)))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    use_prm = is_available(COUNTDOWN_DEFAULT_PRM)
    models = ",".join([POLICY] + [COUNTDOWN_DEFAULT_PRM] * use_prm)
    prompts = [format_prompt(problem) for problem in dev_problems(args.problems)]
    rows, summaries, streams = [], [], []
    folder = args.out.parent / "stream_latency_server"
    folder.mkdir(parents=True, exist_ok=True)
    with running_server({"--models": models, "--trace-db": folder / "traces.sqlite3"}, folder) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=600)
        time_stream(client, "greedy", prompts[0], 64, use_prm)  # warm-up: first-call costs out of the way
        for strategy in strategies:
            timings = [time_stream(client, strategy, prompt, args.budget, use_prm) for prompt in prompts]
            streams += [asdict(t) for t in timings]
            summary = summarise(strategy, timings)
            summaries.append(summary)
            keys = ("first_p50_s", "first_p99_s", "first_event_p50_s", "first_reasoning_p50_s")
            gaps = ("gap_p50_s", "gap_p99_s", "gap_max_s", "answer_p50_s")
            rows.append([strategy, *(fmt(summary[k]) for k in keys + gaps), summary["chunks_p50"]])
            print(f"{strategy}: done", flush=True)
    headers = ["strategy", "first p50", "first p99", "1st node p50", "1st reasoning p50"]
    print_table(headers + ["gap p50", "gap p99", "gap max", "answer p50", "chunks p50"], rows)
    payload = {"budget_tokens": args.budget, "problems": args.problems, "prm": use_prm, "model": POLICY}
    write_json(args.out, {**payload, "summary": summaries, "streams": streams})


if __name__ == "__main__":
    main()
