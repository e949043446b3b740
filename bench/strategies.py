"""Search strategies x token budgets on a task's dev set, guided by the PRM alone.

    python -m bench.strategies [--model countdown] [--task countdown] [--problems 300]
        [--budgets 256,512,1024] [--strategies greedy,best_of_n,self_consistency,beam,dvts,mcts,revise]
        [--concurrency 12] [--update]

`--task` picks the problem set (bench.workloads): `countdown` (the default for the bundled
`countdown` policy) or `math`, arithmetic word problems graded against gold answers, e.g.
`--model smollm2-135m-instruct --task math`, where greedy, self-consistency, best-of-N and beam
run by default. A model without a paired PRM scores steps by its own step log-probability.

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
from bench.workloads import get_workload
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
from rewards.prm import load_prm
from rewards.tasks import DEFAULT_TASK
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
    knobs: dict[str, object] | None = None,
) -> SearchConfig:
    """What the server runs for `{"strategy": ..., "budget_tokens": ..., **knobs}` on `policy`:
    the same resolution and model defaults (`offline_search_config`): its temperature and task,
    and the aggregation of its paired PRM, unless overridden."""
    search: dict[str, object] = {"strategy": strategy, "budget_tokens": budget, "seed": SEED, **(knobs or {})}
    overrides = {"temperature": temperature, "aggregate": aggregate}
    search |= {knob: value for knob, value in overrides.items() if value is not None}
    return offline_search_config(policy, paired_prm(policy), search)


def plot(cells: list[Cell], path: Path, title: str) -> None:
    """Accuracy against mean generated tokens, one line per strategy with a standard-error bar
    and its token budget written at each point; greedy, which spends the same tokens at every
    budget, is a dashed level line with its standard error shaded."""
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
        mine.sort(key=lambda c: c.mean_tokens)
        xs, ys = [c.mean_tokens for c in mine], [c.accuracy for c in mine]
        ax.errorbar(xs, ys, yerr=[c.standard_error for c in mine], marker="o", capsize=3, label=strategy)
        for cell in mine:  # which budget each point spent its tokens under
            ax.annotate(
                str(cell.budget_tokens),
                (cell.mean_tokens, cell.accuracy),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per problem")
    ax.set_ylabel("accuracy (exact verifier)")
    ax.set_title(f"{title}: search at equal token budgets")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")


def load_scorer(name: str, threads: int | None = None) -> PrmScorer | None:
    """The PRM `name` on `threads` torch threads of its own (None: every core, in turn with the
    engine), as the server runs a PRM."""
    if name == NO_PRM:
        return None
    prm = OracleCountdownPRM() if name == ORACLE_PRM else load_prm(resolve_model_dir(name))
    return PrmScorer(prm, threads=threads)


async def run_all(args: argparse.Namespace) -> list[Cell]:
    engine = EmbeddedEngine(args.policy, EngineOptions(num_threads=args.threads, cache_capacity_mb=512))
    await engine.start()
    prm = load_scorer(args.prm, args.threads)
    messages, check = args.workload.problems(args.problem_seed, args.problems)
    aggregate = args.aggregate or recommended_aggregate(args.prm)  # the server's choice for that PRM
    knobs = {"task": args.task, **args.workload.search}
    cells: list[Cell] = []
    try:
        for strategy in args.strategies:
            for budget in args.budgets:
                config = search_config(strategy, budget, args.temperature, aggregate, args.policy, knobs)
                cell = await run_cell(engine, prm, messages, check, config, args.concurrency)
                cells.append(cell)
    finally:
        await engine.close()
    return cells


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", "--policy", dest="policy", default=POLICY, help="served policy model id")
    parser.add_argument(
        "--task", default=None, help="problem set: countdown or math; default: the model's task"
    )
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument(
        "--problem-seed",
        type=int,
        default=None,
        help="default: the task's dev seed; another gives a tuning set",
    )
    parser.add_argument("--budgets", default=DEFAULT_BUDGETS, help="comma-separated token budgets")
    parser.add_argument(
        "--strategies", default=None, help="default: the task's (every strategy for countdown)"
    )
    parser.add_argument(
        "--prm", default=None, help="PRM model id, 'none' or 'oracle'; default: the model's own"
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
    parser.add_argument(
        "--out", type=Path, default=None, help="default: bench/results/strategies[-TASK].json"
    )
    parser.add_argument("--update", action="store_true", help="rerun only --strategies; keep the other cells")
    args = parser.parse_args(argv)
    try:
        resolve_defaults(args)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def resolve_defaults(args: argparse.Namespace) -> None:
    """Fill what the model and its task decide: the task, its workload and dev seed, its
    strategies, the paired PRM (else the policy's own step probability) and the output path."""
    args.task = args.task or model_task(args.policy) or DEFAULT_TASK
    args.workload = get_workload(args.task)
    if args.problem_seed is None:
        args.problem_seed = args.workload.dev_seed
    args.prm = args.prm or paired_prm(args.policy) or NO_PRM
    if args.out is None:
        suffix = "" if args.task == "countdown" else f"-{args.task}"
        args.out = Path(f"bench/results/strategies{suffix}.json")
    args.budgets = [int(b) for b in args.budgets.split(",")]
    names = args.strategies.split(",") if args.strategies else args.workload.strategies or STRATEGIES
    args.strategies = [s.strip() for s in names]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; valid: {', '.join(STRATEGIES)}")


def current_commit() -> str:
    """HEAD's short hash, `+` if the working tree differs from it; "" outside a git checkout."""

    def git(*command: str) -> str:
        run = subprocess.run(["git", *command], capture_output=True, text=True, cwd=Path(__file__).parent)
        return run.stdout.strip() if run.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    return head + ("+" if head and git("status", "--porcelain", "--untracked-files=no") else "")


def describe(args: argparse.Namespace, scorer: str) -> dict[str, object]:
    """What the cells were measured on: cells of two runs compare only when this is equal."""
    return {
        "model": args.policy,
        "task": args.task,
        "problem_seed": args.problem_seed,
        "num_problems": args.problems,
        "scorer": scorer,
    }


def merged_cells(args: argparse.Namespace, fresh: list[Cell], scorer: str) -> list[Cell]:
    """`fresh` in place of the same strategies' cells in the JSON at `args.out`; the file must
    describe the same model, problems, budgets and scorer, or the cells would not compare."""
    old = json.loads(args.out.read_text())
    kept = [Cell.from_json(c) for c in old["cells"]]
    before = {"model": POLICY, "task": "countdown"} | {k: v for k, v in old.items() if k != "cells"}
    if before != describe(args, scorer) or {c.budget_tokens for c in kept} != set(args.budgets):
        raise SystemExit(f"--update: {args.out} holds another problem set, scorer or budgets")
    rerun = {c.strategy for c in fresh}
    cells = [c for c in kept if c.strategy not in rerun] + fresh
    return sorted(cells, key=lambda c: (list(STRATEGIES).index(c.strategy), c.budget_tokens))


def print_cells(cells: list[Cell]) -> None:
    """Every cell with its paired won/lost against greedy at the same budget, then the tree
    searches against the sampling baselines."""
    headers = ["strategy", "budget", "accuracy", "± se", "vs greedy", "mean tokens"]
    headers += ["prompt computed", "prompt reused", "wall s", "past deadline"]
    greedy = {c.budget_tokens: c for c in cells if c.strategy == "greedy"}
    rows = [
        [c.strategy, c.budget_tokens, f"{c.accuracy:.3f}", f"{c.standard_error:.3f}"]
        + [c.versus(greedy[c.budget_tokens]) if c.budget_tokens in greedy else "-", f"{c.mean_tokens:.0f}"]
        + [c.prompt_tokens_computed, c.prompt_tokens_reused, f"{c.wall_s:.0f}", c.num_past_deadline]
        for c in cells
    ]
    print_table(headers, rows)
    comparisons = comparison_rows(cells)
    if comparisons:
        print("\nTree search against sampling, on the same problems:")
        print_table(["comparison", "budget", "accuracy", "won/lost", "paired z"], comparisons)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    scorer = "policy step probability (no PRM)" if args.prm == NO_PRM else f"PRM {args.prm}"
    commit = current_commit()
    cells = [replace(c, commit=commit) for c in asyncio.run(run_all(args))]
    if args.update:
        cells = merged_cells(args, cells, scorer)
    split = "dev" if args.problem_seed == args.workload.dev_seed else "tuning"
    knobs = "".join(f", {knob}={value}" for knob, value in args.workload.search.items())
    print(
        f"{args.workload.title} {split} (seed {args.problem_seed}), {args.problems} problems, "
        f"{args.policy}, {scorer}{knobs}, no verifier"
    )
    print_cells(cells)
    write_json(args.out, describe(args, scorer) | {"cells": [asdict(c) for c in cells]})
    plot(cells, args.out.with_suffix(".png"), args.workload.title)


if __name__ == "__main__":
    main()
