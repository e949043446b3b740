"""The fused decode step against the model's own forward, paired in one run.

    python -m bench.decode_paired [--problems 6] [--budgets 1024,4096] [--strategies beam,mcts,best_of_n]

This machine's speed drifts by a third from one minute to the next (two consecutive
`bench.speed` runs measured 1,684 and 3,139 raw tok/s at batch 64), so two runs of `bench.speed`,
before and after a change, cannot show a 1.3x gain. Here every search runs twice back to back,
once with each decode step (`engine.fast_decode`: `FusedDecode`, and `ModelDecode`, the
transformers forward the engine ran before), alternating which goes first; the raw decode rate
is paired the same way at each batch size. The table gives each side's median seconds and
tokens/s and the median of the per-problem speedups, which drift does not move.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.report import print_table, write_json
from bench.speed import POLICY, load_average, search_runs
from bench.speed_raw import ForwardMeter, engine_worker, raw_decode_rate
from bench.speed_stats import SearchRun
from bench.strategies import load_scorer
from engine.embedded import EmbeddedEngine
from engine.fast_decode import DecodeStep, FusedDecode, ModelDecode
from engine.options import EngineOptions
from engine.protocol import ChatMessage
from engine.worker import BatchWorker
from rewards.countdown.problems import dev_problems, format_prompt


@dataclass(frozen=True)
class PairedCell:
    request: str
    num_problems: int
    fused_median_s: float
    model_median_s: float
    fused_tokens_per_s: float
    model_tokens_per_s: float
    speedup: float
    """Median over problems of (model forward's seconds / fused step's seconds)."""


def decoders(worker: BatchWorker) -> dict[str, DecodeStep]:
    """The worker's own fused step, and the model's forward beside it (over the same weights)."""
    if not isinstance(worker.decode, FusedDecode):
        raise SystemExit("the policy is not a fusable architecture: nothing to compare")
    return {"fused": worker.decode, "model": ModelDecode(worker.model)}


def paired_raw(
    worker: BatchWorker,
    steps_by: dict[str, DecodeStep],
    prompt_ids: list[int],
    batches: list[int],
    steps: int,
) -> list[PairedCell]:
    """Raw rate of both decode steps at each batch size, interleaved three times, best of each."""
    cells = []
    for batch in batches:
        rates: dict[str, list[float]] = {"fused": [], "model": []}
        for repeat in range(3):
            for name in sorted(steps_by, reverse=repeat % 2 == 1):
                worker.decode = steps_by[name]
                rates[name].append(raw_decode_rate(worker, prompt_ids, batch, steps))
        fused, model = max(rates["fused"]), max(rates["model"])
        cells.append(PairedCell(f"raw batch {batch}", 3, 0.0, 0.0, fused, model, fused / model))
    return cells


async def paired_searches(args: argparse.Namespace) -> list[PairedCell]:
    engine = EmbeddedEngine(POLICY, EngineOptions(num_threads=args.threads, cache_capacity_mb=512))
    await engine.start()
    prm = load_scorer(args.prm, args.threads)
    messages = [format_prompt(p) for p in dev_problems(args.problems)]
    worker = engine_worker(engine)
    steps_by = decoders(worker)
    cells: list[PairedCell] = []
    try:
        prompt_ids = engine.apply_chat_template([ChatMessage("user", messages[0])])
        cells += await asyncio.to_thread(
            paired_raw, worker, steps_by, prompt_ids, args.batches, args.raw_steps
        )
        for strategy in args.strategies:
            for budget in args.budgets:
                runs: dict[str, list[SearchRun]] = {"fused": [], "model": []}
                for i, message in enumerate(messages):
                    for name in sorted(steps_by, reverse=i % 2 == 1):  # alternate who goes first
                        worker.decode = steps_by[name]
                        meter = ForwardMeter(worker)
                        runs[name] += await search_runs(engine, meter, prm, strategy, budget, [message])
                        meter.close()
                cells.append(summarize(f"{strategy}@{budget}", runs["fused"], runs["model"]))
    finally:
        worker.decode = steps_by["fused"]
        await engine.close()
    return cells


def summarize(request: str, fused: list[SearchRun], model: list[SearchRun]) -> PairedCell:
    return PairedCell(
        request,
        len(fused),
        statistics.median(r.wall_s for r in fused),
        statistics.median(r.wall_s for r in model),
        sum(r.tokens for r in fused) / sum(r.wall_s for r in fused),
        sum(r.tokens for r in model) / sum(r.wall_s for r in model),
        statistics.median(m.wall_s / f.wall_s for f, m in zip(fused, model, strict=True)),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=6)
    parser.add_argument("--budgets", default="1024,4096")
    parser.add_argument("--strategies", default="beam,mcts,best_of_n")
    parser.add_argument("--batches", default="1,4,16,64")
    parser.add_argument("--raw-steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prm", default="countdown-checker")
    parser.add_argument("--out", type=Path, default=Path("bench/results/decode_paired.json"))
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.batches = [int(b) for b in args.batches.split(",")]
    args.strategies = [s for s in args.strategies.split(",") if s]
    torch.set_num_threads(args.threads)
    began = load_average()
    cells = asyncio.run(paired_searches(args))
    print(f"load average {began:.1f} at start, {load_average():.1f} at end")
    headers = ["request", "n", "fused median s", "model median s", "fused tok/s", "model tok/s", "speedup"]
    rows = [
        [c.request, c.num_problems, f"{c.fused_median_s:.2f}", f"{c.model_median_s:.2f}"]
        + [f"{c.fused_tokens_per_s:.0f}", f"{c.model_tokens_per_s:.0f}", f"{c.speedup:.2f}x"]
        for c in cells
    ]
    print_table(headers, rows)
    write_json(args.out, {"threads": args.threads, "cells": [asdict(c) for c in cells]})


if __name__ == "__main__":
    main()
