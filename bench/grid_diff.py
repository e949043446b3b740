"""Two runs of the strategy grid, cell by cell: did a code change move any strategy's accuracy?

    python -m bench.grid_diff BEFORE.json AFTER.json [--out docs/results/grid-diff.json]

Both files come from `bench.strategies` on the same problems (model, task, seed, count and
scorer must match). Each cell present in both is compared on the same problems: accuracies,
the paired won/lost (problems only one of them solved) and McNemar's paired z. |z| < 2 is what
"unchanged within noise" means here; a larger |z| names a cell to look into.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.report import print_table, write_json
from trainer.evaluate import Cell

NOISE_Z = 2.0
"""|paired z| below this: the difference is within what resampling the same problems gives."""
SAME_PROBLEMS_KEYS = ("model", "task", "problem_seed", "num_problems", "scorer")


def load_cells(path: Path) -> tuple[dict[str, object], dict[tuple[str, int], Cell]]:
    """The run's description and its cells by (strategy, budget)."""
    payload = json.loads(path.read_text())
    cells = [Cell.from_json(raw) for raw in payload["cells"]]
    return {k: payload.get(k) for k in SAME_PROBLEMS_KEYS}, {(c.strategy, c.budget_tokens): c for c in cells}


def diff_rows(
    before: dict[tuple[str, int], Cell], after: dict[tuple[str, int], Cell]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for key in [k for k in before if k in after]:
        old, new = before[key], after[key]
        won, lost = new.won_lost(old)
        z = new.paired_z(old)
        rows.append(
            {
                "strategy": key[0],
                "budget": key[1],
                "before": old.accuracy,
                "after": new.accuracy,
                "won": won,
                "lost": lost,
                "paired_z": round(z, 2),
                "within_noise": abs(z) < NOISE_Z,
                "commits": [old.commit, new.commit],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/grid-diff.json"))
    args = parser.parse_args(argv)
    (info_before, before), (info_after, after) = load_cells(args.before), load_cells(args.after)
    mismatched = [
        k for k in SAME_PROBLEMS_KEYS if info_before[k] != info_after[k] and info_before[k] is not None
    ]
    if mismatched:
        raise SystemExit(f"the runs are not on the same problems: {', '.join(mismatched)} differ")
    rows = diff_rows(before, after)
    if not rows:
        raise SystemExit("no cell (strategy, budget) is in both runs")
    print(f"{args.before} -> {args.after}, {info_after['num_problems']} problems")
    headers = ["strategy", "budget", "before", "after", "won/lost", "paired z", "within noise"]
    print_table(
        headers,
        [
            [r["strategy"], r["budget"], f"{r['before']:.3f}", f"{r['after']:.3f}"]
            + [f"+{r['won']}/-{r['lost']}", f"{r['paired_z']:+.1f}", "yes" if r["within_noise"] else "NO"]
            for r in rows
        ],
    )
    write_json(args.out, {"before": str(args.before), "after": str(args.after), **info_after, "cells": rows})


if __name__ == "__main__":
    main()
