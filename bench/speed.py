"""How fast one search spends its tokens, against what the hardware decodes (issue 20).

    python -m bench.speed [--problems 6] [--budgets 1024,4096] [--strategies beam,mcts,best_of_n]
        [--batches 1,2,4,8,16,32,64] [--raw-steps 32] [--threads 2]

One run measures, on the embedded engine in this process:
- the raw batched decode rate of the Countdown policy: its forward pass with a KV cache at each
  batch size, nothing else (`bench.speed_raw`);
- each strategy at each budget on held-out problems, one search at a time, PRM-guided as the
  server runs it: median seconds per problem, generated tokens/s, the mean live batch (rows per
  decode step, counted by a wrapper on the engine's decode step), the raw rate at that batch and the
  ratio, and the share of wall time in decode, prefill and PRM calls;
- greedy decoding of one request per problem.
Every figure carries the 1-minute load average it ran under: the machine may be shared.
Prints tables, writes JSON and a plot of tokens/s against batch size with each cell's point.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from bench.report import print_table, write_json
from bench.speed_raw import ForwardMeter, engine_worker, raw_curve
from bench.speed_stats import SearchRun, SpeedRow, summarize
from bench.strategies import load_scorer, search_config
from engine.embedded import EmbeddedEngine
from engine.models import COUNTDOWN_DEFAULT_PRM, COUNTDOWN_REPLY_TOKENS
from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams
from rewards.countdown.problems import DEV_SEED, dev_problems, format_prompt
from search.context import PrmScorer, SearchContext
from search.registry import STRATEGIES
from search.runner import run_search

POLICY = "countdown"
GREEDY = "greedy (1 request)"
DEFAULT_BATCHES = "1,2,4,8,16,32,64"


def load_average() -> float:
    return os.getloadavg()[0]


async def search_runs(
    engine: EmbeddedEngine,
    meter: ForwardMeter,
    prm: PrmScorer | None,
    strategy: str,
    budget: int,
    messages: list[str],
) -> list[SearchRun]:
    """One search per message, one at a time, as the server runs `{"strategy", "budget_tokens"}`."""
    config = search_config(strategy, budget, policy=POLICY)
    runs: list[SearchRun] = []
    for message in messages:
        prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
        before, began = meter.snapshot(), time.monotonic()
        result = await run_search(SearchContext(engine, message, prm=prm), prompt_ids, config)
        wall = time.monotonic() - began
        stats = result.stats
        forward = meter.snapshot() - before
        runs.append(
            SearchRun(wall, stats.num_tokens_generated, sum(stats.prm_call_seconds), forward, load_average())
        )
    print(f"{strategy}@{budget}: {len(runs)} searches, {sum(r.wall_s for r in runs):.1f} s", flush=True)
    return runs


async def greedy_runs(engine: EmbeddedEngine, meter: ForwardMeter, messages: list[str]) -> list[SearchRun]:
    """One plain greedy request per message: the engine's single-sequence decode path."""
    params = SamplingParams(max_new_tokens=COUNTDOWN_REPLY_TOKENS, temperature=0.0)
    runs: list[SearchRun] = []
    for message in messages:
        prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
        before, began = meter.snapshot(), time.monotonic()
        [[reply]] = await engine.generate([prompt_ids], params)
        wall = time.monotonic() - began
        runs.append(SearchRun(wall, len(reply.token_ids), 0.0, meter.snapshot() - before, load_average()))
    return runs


async def measure(args: argparse.Namespace) -> tuple[dict[int, float], float, list[SpeedRow]]:
    """The raw curve (and the load it ran under), then every cell against it."""
    engine = EmbeddedEngine(POLICY, EngineOptions(num_threads=args.threads, cache_capacity_mb=512))
    await engine.start()
    prm = load_scorer(args.prm, args.threads)
    messages = [format_prompt(p) for p in dev_problems(args.problems)]
    worker = engine_worker(engine)
    try:
        prompt_ids = engine.apply_chat_template([ChatMessage("user", messages[0])])
        curve = await asyncio.to_thread(
            raw_curve, worker, prompt_ids, args.batches, args.raw_steps, args.raw_repeats
        )
        raw_load = load_average()
        meter = ForwardMeter(worker)
        rows = [summarize(GREEDY, COUNTDOWN_REPLY_TOKENS, await greedy_runs(engine, meter, messages), curve)]
        for strategy in args.strategies:
            for budget in args.budgets:
                runs = await search_runs(engine, meter, prm, strategy, budget, messages)
                rows.append(summarize(strategy, budget, runs, curve))
        meter.close()
    finally:
        await engine.close()
    return curve, raw_load, rows


def plot(curve: dict[int, float], rows: list[SpeedRow], path: Path) -> None:
    """Raw tokens/s against batch size, and each cell at its mean live batch, labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = sorted(curve)
    ax.plot(sizes, [curve[b] for b in sizes], marker="o", color="black", label="raw decode (forward + KV)")
    for row in rows:
        if row.mean_batch <= 0:
            continue
        ax.scatter([row.mean_batch], [row.tokens_per_s], zorder=3)
        label = row.strategy if row.strategy == GREEDY else f"{row.strategy}@{row.budget_tokens}"
        ax.annotate(
            label, (row.mean_batch, row.tokens_per_s), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("live batch (rows per decode step)")
    ax.set_ylabel("generated tokens/s")
    ax.set_title("Countdown policy: searches against the raw decode rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")


def print_tables(curve: dict[int, float], raw_load: float, rows: list[SpeedRow]) -> None:
    print(f"\nRaw batched decode, forward pass + KV cache (load {raw_load:.1f} after):")
    print_table(["batch", "tokens/s"], [[b, f"{rate:.0f}"] for b, rate in sorted(curve.items())])
    headers = ["request", "budget", "n", "median s", "tok/s", "mean batch", "raw tok/s", "ratio", "fwd tok/s"]
    headers += ["decode %", "prefill %", "prm %", "load"]
    table = [
        [r.strategy, r.budget_tokens, r.num_problems, f"{r.median_s:.2f}", f"{r.tokens_per_s:.0f}"]
        + [f"{r.mean_batch:.1f}", f"{r.raw_tokens_per_s:.0f}", f"{r.ratio_to_raw:.2f}"]
        + [f"{r.forward_tokens_per_s:.0f}"]
        + [f"{100 * r.decode_share:.0f}", f"{100 * r.prefill_share:.0f}", f"{100 * r.prm_share:.0f}"]
        + [f"{r.mean_load:.1f}"]
        for r in rows
    ]
    print("\nOne search at a time on the embedded engine; fwd tok/s: rows/s inside its decode steps;")
    print("% of wall time in decode steps, prefills and PRM calls (the rest: Python and waits):")
    print_table(headers, table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=6, help="held-out dev problems per cell")
    parser.add_argument("--budgets", default="1024,4096")
    parser.add_argument("--strategies", default="beam,mcts,best_of_n")
    parser.add_argument("--batches", default=DEFAULT_BATCHES, help="batch sizes of the raw decode curve")
    parser.add_argument("--raw-steps", type=int, default=32, help="timed decode steps per batch size")
    parser.add_argument("--raw-repeats", type=int, default=3, help="runs per batch size; the best counts")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the issue's goal: 2 cores)")
    parser.add_argument("--prm", default=COUNTDOWN_DEFAULT_PRM, help="bundled PRM id, 'none' or 'oracle'")
    parser.add_argument("--out", type=Path, default=Path("bench/results/speed.json"))
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",") if b]
    args.batches = [int(b) for b in args.batches.split(",") if b]
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; valid: {', '.join(STRATEGIES)}")
    if not args.batches or args.problems < 1:
        parser.error("give at least one batch size and one problem")
    return args


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    began_load = load_average()
    curve, raw_load, rows = asyncio.run(measure(args))
    print(f"load average: {began_load:.1f} at start, {load_average():.1f} at end ({os.cpu_count()} cpus)")
    print_tables(curve, raw_load, rows)
    payload = {
        "dev_seed": DEV_SEED,
        "num_problems": args.problems,
        "threads": args.threads,
        "prm": args.prm,
        "raw_steps": args.raw_steps,
        "raw_repeats": args.raw_repeats,
        "raw_curve": {str(b): rate for b, rate in sorted(curve.items())},
        "raw_load": raw_load,
        "load_at_start": began_load,
        "cpus": os.cpu_count(),
        "rows": [asdict(r) for r in rows],
    }
    write_json(args.out, payload)
    plot(curve, rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
