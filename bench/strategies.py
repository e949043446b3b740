"""Search strategies x token budgets on the Countdown dev set, guided by the PRM alone.

    python -m bench.strategies [--problems 300] [--budgets 256,512,1024]
        [--strategies greedy,best_of_n,self_consistency,beam,dvts,mcts,revise] [--concurrency 12]

The outcome verifier is off during search (it only grades the final reply), so this measures
what PRM-guided search buys at equal generated tokens. Searches for many problems run at once
so the embedded engine batches their steps. Writes a table, JSON and an accuracy-vs-tokens PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from bench.report import print_table, write_json
from engine.embedded import EmbeddedEngine
from engine.models import COUNTDOWN_REPLY_TOKENS, resolve_model_dir
from engine.options import EngineOptions
from engine.protocol import ChatMessage
from rewards.countdown.oracle_prm import OracleCountdownPRM
from rewards.countdown.problems import DEV_SEED, Problem, format_prompt, generate_problems
from rewards.countdown.verifier import verify_reply
from rewards.prm import load_prm
from search.config import SearchConfig, SearchLimits, with_overrides
from search.context import PrmScorer, SearchContext
from search.registry import STRATEGIES
from search.runner import run_search
from search.sizing import widths_for_budget

DEFAULT_BUDGETS = "256,512,1024"
SEED = 0
NO_PRM = "none"
"""`--prm none`: score steps by the policy's own step probability (while no PRM is trained)."""
ORACLE_PRM = "oracle"
"""`--prm oracle`: the exact step labeller as the PRM, for each strategy's ceiling."""


@dataclass(frozen=True)
class Cell:
    """One strategy at one budget, averaged over the problems."""

    strategy: str
    budget_tokens: int
    accuracy: float
    mean_tokens: float
    prompt_tokens_computed: int
    prompt_tokens_reused: int
    wall_s: float


@dataclass(frozen=True)
class Outcome:
    is_correct: bool
    tokens: int
    computed: int
    reused: int


def search_config(
    strategy: str,
    budget: int,
    temperature: float = SearchConfig.temperature,
    how: str = SearchConfig.aggregate,
) -> SearchConfig:
    """The search the server runs for `{"strategy": ..., "budget_tokens": ...}` on `countdown`:
    widths sized to the budget by the server's own rule."""
    widths = widths_for_budget(strategy, budget, COUNTDOWN_REPLY_TOKENS, SearchLimits())
    config = SearchConfig(
        strategy=strategy,
        budget_tokens=budget,
        max_seconds=600.0,
        seed=SEED,
        temperature=temperature,
        aggregate=how,
    )
    return with_overrides(config, dict(widths))


async def solve(
    engine: EmbeddedEngine, prm: PrmScorer | None, problem: Problem, config: SearchConfig
) -> Outcome:
    message = format_prompt(problem)
    prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
    ctx = SearchContext(engine, message, prm=prm)
    result = await run_search(ctx, prompt_ids, config)
    s = result.stats
    is_correct = verify_reply(problem, result.text)
    return Outcome(
        is_correct, s.num_tokens_generated, s.num_prompt_tokens_computed, s.num_prompt_tokens_reused
    )


async def run_cell(
    engine: EmbeddedEngine,
    prm: PrmScorer | None,
    problems: list[Problem],
    config: SearchConfig,
    concurrency: int,
) -> Cell:
    """All problems for one (strategy, budget), `concurrency` searches in flight at a time."""
    gate = asyncio.Semaphore(concurrency)
    progress = tqdm(total=len(problems), desc=f"{config.strategy}@{config.budget_tokens}", mininterval=10)

    async def one(problem: Problem) -> Outcome:
        async with gate:
            outcome = await solve(engine, prm, problem, config)
        progress.update()
        return outcome

    began = time.monotonic()
    outcomes = await asyncio.gather(*(one(p) for p in problems))
    progress.close()
    cell = Cell(
        strategy=config.strategy,
        budget_tokens=config.budget_tokens,
        accuracy=sum(o.is_correct for o in outcomes) / len(outcomes),
        mean_tokens=sum(o.tokens for o in outcomes) / len(outcomes),
        prompt_tokens_computed=sum(o.computed for o in outcomes),
        prompt_tokens_reused=sum(o.reused for o in outcomes),
        wall_s=time.monotonic() - began,
    )
    print(f"{config.strategy}@{config.budget_tokens}: accuracy {cell.accuracy:.3f}", flush=True)
    return cell


def plot(cells: list[Cell], path: Path) -> None:
    """Accuracy against mean generated tokens, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in dict.fromkeys(c.strategy for c in cells):
        points = sorted((c.mean_tokens, c.accuracy) for c in cells if c.strategy == strategy)
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=strategy)
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per problem")
    ax.set_ylabel("accuracy (exact verifier)")
    ax.set_title("Countdown dev: PRM-guided search at equal token budgets")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")


def load_scorer(name: str) -> PrmScorer | None:
    if name == NO_PRM:
        return None
    return PrmScorer(OracleCountdownPRM() if name == ORACLE_PRM else load_prm(resolve_model_dir(name)))


async def run_all(args: argparse.Namespace) -> list[Cell]:
    engine = EmbeddedEngine(args.policy, EngineOptions(num_threads=args.threads, cache_capacity_mb=512))
    await engine.start()
    prm = load_scorer(args.prm)
    problems = generate_problems(args.problem_seed, args.problems)
    cells: list[Cell] = []
    try:
        for strategy in args.strategies:
            for budget in args.budgets:
                cells.append(
                    await run_cell(
                        engine,
                        prm,
                        problems,
                        search_config(strategy, budget, args.temperature, args.aggregate),
                        args.concurrency,
                    )
                )
    finally:
        await engine.close()
    return cells


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument(
        "--problem-seed", type=int, default=DEV_SEED, help="another seed gives a tuning set apart from dev"
    )
    parser.add_argument("--budgets", default=DEFAULT_BUDGETS, help="three comma-separated token budgets")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--policy", default="countdown", help="bundled policy model id")
    parser.add_argument("--prm", default="countdown-prm", help="bundled PRM model id, 'none' or 'oracle'")
    parser.add_argument("--temperature", type=float, default=SearchConfig.temperature)
    parser.add_argument("--aggregate", default=SearchConfig.aggregate, help="step-score aggregation")
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="torch threads; 1 on a shared machine")
    parser.add_argument("--out", type=Path, default=Path("bench/results/strategies.json"))
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.strategies = [s.strip() for s in args.strategies.split(",")]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; valid: {', '.join(STRATEGIES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cells = asyncio.run(run_all(args))
    headers = ["strategy", "budget", "accuracy", "mean tokens", "prompt computed", "prompt reused", "wall s"]
    rows = [
        [c.strategy, c.budget_tokens, f"{c.accuracy:.3f}", f"{c.mean_tokens:.0f}"]
        + [c.prompt_tokens_computed, c.prompt_tokens_reused, f"{c.wall_s:.0f}"]
        for c in cells
    ]
    scorer = "policy step probability (no PRM)" if args.prm == NO_PRM else f"PRM {args.prm}"
    split = "dev" if args.problem_seed == DEV_SEED else "tuning"
    print(f"Countdown {split} (seed {args.problem_seed}), {args.problems} problems, {scorer}, no verifier")
    print_table(headers, rows)
    payload = {
        "problem_seed": args.problem_seed,
        "num_problems": args.problems,
        "scorer": scorer,
        "cells": [asdict(c) for c in cells],
    }
    write_json(args.out, payload)
    plot(cells, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
