"""The learning loop's figures: each round's version against round 0 on the same dev problems.

    python -m bench.learning [--model countdown] [--runs-dir runs/learn] [--store .cache/versions]
        [--out bench/results/learning.json]

Reads what `./run learn` left (round states and the gate's cached evaluations, keyed by the
weights' digest), so it costs no model time. Prints greedy and the search setting per round with
won/lost and paired z against round 0, the data each round trained on and each stage's wall
time; writes JSON and a PNG of accuracy against round.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.report import print_table, write_json
from engine.versions import VersionStore
from trainer.evaluate import Cell
from trainer.gate import VersionUnderTest
from trainer.learn_stages import STAGES
from trainer.round_state import RoundState, round_folders


def load_cells(evals: Path, version: VersionUnderTest) -> dict[str, Cell] | None:
    path = evals / f"{version.digest()}.json"
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return {name: Cell.from_json(c) for name, c in raw["cells"].items()}


def rounds_of(args: argparse.Namespace) -> list[tuple[str, RoundState | None, VersionUnderTest]]:
    """(name, state, version under test): round 0 is the first round's parent, then each round's
    promoted candidate (with the checker it was gated with)."""
    store = VersionStore(args.store)
    states = [RoundState.open(f, {}) for f in round_folders(args.runs_dir / args.model)]
    states = [s for s in states if s.is_finished]
    if not states:
        raise SystemExit(f"no finished learning round under {args.runs_dir / args.model}")
    first = states[0].body
    prm_id = "countdown-checker" if first.get("parent_prm") is not None else None
    base_prm = None if prm_id is None else store.folder(prm_id, int(first["parent_prm"]))
    rows: list[tuple[str, RoundState | None, VersionUnderTest]] = [
        ("round 0", None, VersionUnderTest("r0", store.folder(args.model, int(first["parent"])), base_prm))
    ]
    for state in states:
        gate = state.outputs("gate")
        if not gate.get("chosen"):
            continue
        checker = state.folder / "checker"
        prm = checker if (checker / "config.json").is_file() else rows[-1][2].prm
        rows.append(
            (
                f"round {state.round}",
                state,
                VersionUnderTest(f"r{state.round}", state.folder / gate["chosen"], prm),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="countdown")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learn"))
    parser.add_argument("--store", type=Path, default=Path(".cache/versions"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/learning.json"))
    args = parser.parse_args(argv)
    evals = args.runs_dir / args.model / "evals"
    rounds = [(name, state, load_cells(evals, v)) for name, state, v in rounds_of(args)]
    base = rounds[0][2]
    if base is None:
        raise SystemExit("round 0 was never evaluated")
    table, payload = [], []
    for name, state, cells in rounds:
        if cells is None:
            continue
        entry: dict[str, Any] = {"round": name, "cells": {k: asdict(c) for k, c in cells.items()}}
        row: list[object] = [name]
        for setting, cell in cells.items():
            reference = base[setting]
            row += [f"{cell.accuracy:.3f}", cell.versus(reference), f"{cell.paired_z(reference):+.1f}"]
            entry[f"{setting}_vs_round0"] = {
                "won_lost": cell.versus(reference),
                "z": cell.paired_z(reference),
            }
        if state is not None:
            c, ei, dpo, gate, tune = (
                state.outputs(s) for s in ("collect", "expert_iteration", "dpo", "gate", "tune")
            )
            row += [f"{c['problems']}/{c['solved']}/{c['sound']}", ei.get("examples"), dpo.get("pairs", "-")]
            row += ["yes" if tune.get("dpo_kept") else "no", tune.get("temperature", "-")]
            stages = state.body["stages"]
            row += [" ".join(f"{s[:7]} {stages[s]['seconds'] / 60:.0f}m" for s in STAGES if s in stages)]
            entry.update(collect=c, expert_iteration=ei, dpo=dpo, tune=tune, gate=gate, stages=stages)
        table.append(row)
        payload.append(entry)
    settings = list(base)
    headers = ["version"] + [f"{h} {s}" for s in settings for h in ("", "vs r0", "z")]
    headers += ["problems/solved/sound", "SFT ex", "DPO pairs", "DPO kept", "search T", "stage minutes"]
    table = [r + [""] * (len(headers) - len(r)) for r in table]
    print_table(headers, table)
    write_json(args.out, payload)
    plot(payload, settings, args.out.with_suffix(".png"))


def plot(payload: list[dict[str, Any]], settings: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = list(range(len(payload)))
    for setting in settings:
        cells = [Cell.from_json(p["cells"][setting]) for p in payload]
        ys = [c.accuracy for c in cells]
        ax.errorbar(xs, ys, yerr=[c.standard_error for c in cells], marker="o", capsize=3, label=setting)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8)
    ax.set_xticks(xs, [p["round"] for p in payload])
    ax.set_ylabel("accuracy on dev (exact verifier)")
    ax.set_title("Countdown: each learning round against round 0")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
