"""Search strategies x token budgets on the Countdown dev set, guided by the PRM alone.

    python -m bench.strategies [--problems 300] [--budgets 256,512,1024]
        [--strategies greedy,best_of_n,self_consistency,beam,dvts,mcts,revise] [--concurrency 12]
        [--update]

`--update` reruns only the strategies named and keeps the other cells of the JSON already at
`--out` (same problems, budgets and PRM), so a change to one strategy costs minutes, not the
40-minute grid. Each cell records the commit it ran on.

The outcome verifier is off during search (it only grades the final reply), so this measures
what PRM-guided search buys at equal generated tokens. Searches for many problems run at once
so the embedded engine batches their steps. Writes a table, then the tree searches against the
sampling baselines on the same problems (the must-show), JSON and an accuracy-vs-tokens PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import torch

from bench.report import print_table, write_json
from engine.embedded import EmbeddedEngine
from engine.models import (
    BUNDLED_MODELS,
    COUNTDOWN_DEFAULT_PRM,
    model_task,
    paired_prm,
    recommended_aggregate,
    resolve_model_dir,
)
from engine.options import EngineOptions
from rewards.countdown.oracle_prm import OracleCountdownPRM
from rewards.countdown.problems import DEV_SEED, format_prompt, generate_problems
from rewards.prm import load_prm
from rewards.tasks import DEFAULT_TASK, get_task
from search.config import SearchConfig
from search.context import PrmScorer
from search.registry import STRATEGIES
from trainer.evaluate import Cell, offline_search_config, run_cell

DEFAULT_BUDGETS = "256,512,1024"
SEED = 0
POLICY = "countdown"
COUNTDOWN_TEMPERATURE = dict(BUNDLED_MODELS["countdown"].sampling)["temperature"]
NO_PRM = "none"
"""`--prm none`: score steps by the policy's own step probability (while no PRM is trained)."""
ORACLE_PRM = "oracle"
"""`--prm oracle`: the exact step labeller as the PRM, for each strategy's ceiling."""


TREE_STRATEGIES = ("beam", "mcts")
SAMPLING_BASELINES = ("best_of_n", "self_consistency")
"""What the PRM-guided tree searches must beat at equal budget (issue 4's must-show)."""


def comparison_rows(cells: list[Cell]) -> list[list[object]]:
    """Each tree strategy against each sampling baseline at every budget both ran."""
    by_key = {(c.strategy, c.budget_tokens): c for c in cells}
    budgets = sorted({c.budget_tokens for c in cells})
    rows: list[list[object]] = []
    for tree in TREE_STRATEGIES:
        for baseline in SAMPLING_BASELINES:
            for budget in budgets:
                mine, theirs = by_key.get((tree, budget)), by_key.get((baseline, budget))
                if mine is not None and theirs is not None:
                    difference, z = mine.accuracy - theirs.accuracy, mine.paired_z(theirs)
                    rows.append(
                        [
                            f"{tree} vs {baseline}",
                            budget,
                            f"{difference:+.3f}",
                            mine.versus(theirs),
                            f"{z:+.1f}",
                        ]
                    )
    return rows


def search_config(
    strategy: str,
    budget: int,
    temperature: float | None = None,
    aggregate: str | None = None,
    policy: str = POLICY,
) -> SearchConfig:
    """What the server runs for `{"strategy": ..., "budget_tokens": ...}` on `policy`: the same
    resolution and model defaults (`offline_search_config`): its temperature and task, and the
    aggregation of its paired PRM, unless overridden."""
    search: dict[str, object] = {"strategy": strategy, "budget_tokens": budget, "seed": SEED}
    overrides = {"temperature": temperature, "aggregate": aggregate}
    search |= {knob: value for knob, value in overrides.items() if value is not None}
    return offline_search_config(policy, paired_prm(policy), search)


def plot(cells: list[Cell], path: Path) -> None:
    """Accuracy against mean generated tokens, one line per strategy; greedy, which spends the
    same tokens at every budget, is a dashed level line with its standard error shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in dict.fromkeys(c.strategy for c in cells):
        mine = [c for c in cells if c.strategy == strategy]
        if strategy == "greedy":
            level, se = mine[0].accuracy, mine[0].standard_error
            ax.axhline(level, color="black", linestyle="--", linewidth=1, label="greedy")
            ax.axhspan(level - se, level + se, color="black", alpha=0.06)
            continue
        points = sorted((c.mean_tokens, c.accuracy) for c in mine)
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=strategy)
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per problem")
    ax.set_ylabel("accuracy (exact verifier)")
    ax.set_title("Countdown dev: PRM-guided search at equal token budgets")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
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
    messages = [format_prompt(p) for p in generate_problems(args.problem_seed, args.problems)]
    task = get_task(model_task(args.policy) or DEFAULT_TASK)
    aggregate = args.aggregate or recommended_aggregate(args.prm)  # the server's choice for that PRM
    cells: list[Cell] = []
    try:
        for strategy in args.strategies:
            for budget in args.budgets:
                config = search_config(strategy, budget, args.temperature, aggregate, args.policy)
                cell = await run_cell(engine, prm, messages, task.verify, config, args.concurrency)
                cells.append(cell)
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
    parser.add_argument(
        "--prm", default=COUNTDOWN_DEFAULT_PRM, help="bundled PRM model id, 'none' or 'oracle'"
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help=f"default: the policy's own ({COUNTDOWN_TEMPERATURE})"
    )
    parser.add_argument(
        "--aggregate",
        default=None,
        help="step-score aggregation; default: the PRM's own "
        f"(`{recommended_aggregate(COUNTDOWN_DEFAULT_PRM)}` for {COUNTDOWN_DEFAULT_PRM})",
    )
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2, help="torch threads; 1 on a shared machine")
    parser.add_argument("--out", type=Path, default=Path("bench/results/strategies.json"))
    parser.add_argument("--update", action="store_true", help="rerun only --strategies; keep the other cells")
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.strategies = [s.strip() for s in args.strategies.split(",")]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; valid: {', '.join(STRATEGIES)}")
    return args


def current_commit() -> str:
    """HEAD's short hash, `+` if the working tree differs from it; "" outside a git checkout."""

    def git(*command: str) -> str:
        run = subprocess.run(["git", *command], capture_output=True, text=True, cwd=Path(__file__).parent)
        return run.stdout.strip() if run.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+" if head and git("status", "--porcelain", "--untracked-files=no") else "")


def merged_cells(args: argparse.Namespace, fresh: list[Cell], scorer: str) -> list[Cell]:
    """`fresh` in place of the same strategies' cells in the JSON at `args.out`; the file must
    describe the same problems, budgets and scorer, or the cells would not compare."""
    old = json.loads(args.out.read_text())
    kept = [Cell(**{**c, "solved": tuple(c["solved"])}) for c in old["cells"]]
    same = (old["problem_seed"], old["num_problems"], old["scorer"]) == (
        args.problem_seed,
        args.problems,
        scorer,
    )
    if not same or {c.budget_tokens for c in kept} != set(args.budgets):
        raise SystemExit(f"--update: {args.out} holds another problem set, scorer or budgets")
    rerun = {c.strategy for c in fresh}
    cells = [c for c in kept if c.strategy not in rerun] + fresh
    return sorted(cells, key=lambda c: (list(STRATEGIES).index(c.strategy), c.budget_tokens))


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    scorer = "policy step probability (no PRM)" if args.prm == NO_PRM else f"PRM {args.prm}"
    commit = current_commit()
    cells = [replace(c, commit=commit) for c in asyncio.run(run_all(args))]
    if args.update:
        cells = merged_cells(args, cells, scorer)
    headers = ["strategy", "budget", "accuracy", "± se", "vs greedy", "mean tokens"]
    headers += ["prompt computed", "prompt reused", "wall s"]
    greedy = {c.budget_tokens: c for c in cells if c.strategy == "greedy"}
    rows = [
        [c.strategy, c.budget_tokens, f"{c.accuracy:.3f}", f"{c.standard_error:.3f}"]
        + [c.versus(greedy[c.budget_tokens]) if c.budget_tokens in greedy else "-", f"{c.mean_tokens:.0f}"]
        + [c.prompt_tokens_computed, c.prompt_tokens_reused, f"{c.wall_s:.0f}"]
        for c in cells
    ]
    split = "dev" if args.problem_seed == DEV_SEED else "tuning"
    print(f"Countdown {split} (seed {args.problem_seed}), {args.problems} problems, {scorer}, no verifier")
    print_table(headers, rows)
    comparisons = comparison_rows(cells)
    if comparisons:
        print("\nTree search against sampling, on the same problems:")
        print_table(["comparison", "budget", "accuracy", "won/lost", "paired z"], comparisons)
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
