"""The same search workload on every engine backend: accuracy, wall time and prefix-cache reuse.

    python -m bench.engines [--problems 50] [--budget 256] [--strategies beam,mcts]
        [--engines embedded,vllm] [--concurrency 8] [--prm none]
    python -m bench.engines --peer llama-cpp [--tokens 96] [--threads 2]

`--peer llama-cpp` runs the SmolLM2 comparison instead: single-request greedy decode on ponder's
embedded engine against llama.cpp on the same GGUF (`bench.llama_peer`, which takes the flags).

Each engine serves the bundled Countdown policy in turn; every strategy solves the same dev
problems at one fixed token budget, searches for several problems in flight at once. Hit rate
is the engine's own counter (`cache_stats()`: prompt tokens reused / requested); "search
computed / reused" is what the searches saw per prefilled prefix. vLLM reuses whole KV blocks
only (32 tokens on the CPU), so on short Countdown steps it recomputes more than the radix cache.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.report import print_table, write_json
from bench.strategies import NO_PRM, search_config
from engine.models import resolve_model_dir
from engine.options import EngineOptions
from engine.protocol import ChatMessage, Engine
from engine.registry import ENGINE_BACKENDS, create_engine
from rewards.countdown.problems import DEV_SEED, Problem, dev_problems, format_prompt
from rewards.countdown.verifier import verify_reply
from rewards.prm import load_prm
from search.context import PrmScorer, SearchContext, SearchStats
from search.runner import run_search

NUM_THREADS = 1  # the machine is shared: more threads oversubscribe it
OPTIONS = EngineOptions(num_threads=NUM_THREADS, cache_capacity_mb=512, vllm_kv_cache_gib=0.5)


@dataclass(frozen=True)
class Row:
    """One engine x one strategy over all problems."""

    engine: str
    strategy: str
    accuracy: float
    mean_tokens: float
    wall_s: float
    cache_hit_rate: float
    engine_prompt_tokens_computed: int
    engine_prompt_tokens_reused: int
    search_prompt_tokens_computed: int
    search_prompt_tokens_reused: int


async def solve(
    engine: Engine, prm: PrmScorer | None, problem: Problem, strategy: str, budget: int
) -> tuple[bool, SearchStats]:
    message = format_prompt(problem)
    prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
    result = await run_search(
        SearchContext(engine, message, prm=prm), prompt_ids, search_config(strategy, budget)
    )
    return verify_reply(problem, result.text), result.stats


async def run_strategy(
    engine_name: str, engine: Engine, prm: PrmScorer | None, strategy: str, args: argparse.Namespace
) -> Row:
    problems = dev_problems(args.problems)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(problem: Problem) -> tuple[bool, SearchStats]:
        async with gate:
            return await solve(engine, prm, problem, strategy, args.budget)

    before = engine.cache_stats()
    began = time.monotonic()
    outcomes = await asyncio.gather(*(one(p) for p in problems))
    wall_s = time.monotonic() - began
    after = engine.cache_stats()
    requested = after.prompt_tokens_requested - before.prompt_tokens_requested
    reused = after.prompt_tokens_reused - before.prompt_tokens_reused
    return Row(
        engine=engine_name,
        strategy=strategy,
        accuracy=sum(ok for ok, _ in outcomes) / len(outcomes),
        mean_tokens=sum(s.num_tokens_generated for _, s in outcomes) / len(outcomes),
        wall_s=wall_s,
        cache_hit_rate=reused / requested if requested else 0.0,
        engine_prompt_tokens_computed=after.prompt_tokens_computed - before.prompt_tokens_computed,
        engine_prompt_tokens_reused=reused,
        search_prompt_tokens_computed=sum(s.num_prompt_tokens_computed for _, s in outcomes),
        search_prompt_tokens_reused=sum(s.num_prompt_tokens_reused for _, s in outcomes),
    )


async def run_engine(
    engine_name: str, prm: PrmScorer | None, args: argparse.Namespace
) -> tuple[list[Row], float]:
    began = time.monotonic()
    engine = create_engine(engine_name, args.policy, OPTIONS)
    await engine.start()
    start_s = time.monotonic() - began
    try:
        return [await run_strategy(engine_name, engine, prm, s, args) for s in args.strategies], start_s
    finally:
        await engine.close()


async def run_all(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    prm = None if args.prm == NO_PRM else PrmScorer(load_prm(resolve_model_dir(args.prm)))
    rows: list[Row] = []
    start_s: dict[str, float] = {}
    for name in args.engines:
        engine_rows, start_s[name] = await run_engine(name, prm, args)
        rows.extend(engine_rows)
    return rows, start_s


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--budget", type=int, default=256, help="generated tokens per search")
    parser.add_argument("--strategies", default="beam,mcts")
    parser.add_argument("--engines", default="embedded,vllm")
    parser.add_argument("--policy", default="countdown", help="bundled policy model id")
    parser.add_argument("--prm", default=NO_PRM, help="bundled PRM model id, or 'none' (policy probability)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/results/engines.json"))
    args = parser.parse_args(argv)
    args.strategies = [s.strip() for s in args.strategies.split(",")]
    args.engines = [e.strip() for e in args.engines.split(",")]
    unknown = [e for e in args.engines if e not in ENGINE_BACKENDS]
    if unknown:
        parser.error(f"unknown engines {unknown}; valid: {', '.join(ENGINE_BACKENDS)}")
    return args


PEERS = ("llama-cpp",)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (vLLM starts a process: keep the `__main__` guard below)."""
    peer_parser = argparse.ArgumentParser(add_help=False)
    peer_parser.add_argument("--peer", choices=PEERS)
    peer, rest = peer_parser.parse_known_args(argv)
    if peer.peer is not None:
        from bench import llama_peer

        llama_peer.main(rest)
        return
    args = parse_args(argv)
    torch.set_num_threads(NUM_THREADS)
    rows, start_s = asyncio.run(run_all(args))
    headers = ["engine", "strategy", "accuracy", "mean tokens", "wall s", "hit rate"]
    headers += ["engine computed", "engine reused", "search computed", "search reused"]
    table = [
        [
            r.engine,
            r.strategy,
            f"{r.accuracy:.3f}",
            f"{r.mean_tokens:.0f}",
            f"{r.wall_s:.1f}",
            f"{r.cache_hit_rate:.3f}",
        ]
        + [r.engine_prompt_tokens_computed, r.engine_prompt_tokens_reused]
        + [r.search_prompt_tokens_computed, r.search_prompt_tokens_reused]
        for r in rows
    ]
    print(f"Countdown dev (seed {DEV_SEED}), {args.problems} problems, budget {args.budget}, prm {args.prm}")
    print("engine start s: " + ", ".join(f"{name} {s:.1f}" for name, s in start_s.items()))
    print_table(headers, table)
    payload = {
        "dev_seed": DEV_SEED,
        "num_problems": args.problems,
        "budget_tokens": args.budget,
        "prm": args.prm,
        "engine_start_s": start_s,
        "rows": [asdict(r) for r in rows],
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
