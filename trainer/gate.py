"""The gate: a candidate is promoted only if it is not worse than the served version.

Both are run on the same fixed dev split, greedily and with one search setting, each version
with the PRM paired with it. The comparison is paired (won/lost on the same problems, McNemar's
z), and a candidate fails if either setting is worse beyond `max_drop_z`. A version's figures
are cached by its label, so the served version is evaluated once, not every round.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.embedded import EmbeddedEngine
from engine.models import sampling_defaults
from engine.options import EngineOptions
from rewards.prm import load_prm
from rewards.tasks import TrainableTask
from search.context import PrmScorer
from trainer.checkpoint import weights_digest
from trainer.evaluate import Cell, offline_search_config, run_cell
from trainer.selfplay import write_json_atomically

GREEDY: dict[str, Any] = {"strategy": "greedy", "budget_tokens": 256, "seed": 0}
"""Greedy decoding through the search code: one reply, one step at a time."""


@dataclass(frozen=True)
class GateSettings:
    greedy_problems: int = 1000
    search: dict[str, Any] = field(
        default_factory=lambda: {"strategy": "mcts", "budget_tokens": 1024, "seed": 0}
    )
    search_problems: int = 1000
    max_drop_z: float = -1.96
    """Promote unless a setting is worse by more than this many paired standard errors."""
    concurrency: int = 16
    threads: int | None = None
    split_seed: int | None = None
    """None: the task's dev split; a seed: problems the task makes for it (a tuning split)."""

    def messages(self, task: TrainableTask, num_problems: int) -> list[str]:
        if self.split_seed is None:
            return task.dev_messages(num_problems)
        return task.training_messages(self.split_seed, num_problems)

    def cell_names(self) -> tuple[str, str]:
        return "greedy", f"{self.search['strategy']}@{self.search['budget_tokens']}"


@dataclass(frozen=True)
class VersionUnderTest:
    label: str
    policy: Path
    prm: Path | None

    def digest(self) -> str:
        """Names the policy's and the PRM's weights together."""
        parts = [weights_digest(self.policy)] + ([] if self.prm is None else [weights_digest(self.prm)])
        return "-".join(parts)


@dataclass(frozen=True)
class Verdict:
    promote: bool
    rows: list[dict[str, Any]]
    """Per setting: accuracies, won/lost, paired z."""

    def summary(self) -> str:
        parts = [
            f"{r['setting']} {r['parent']:.3f}->{r['candidate']:.3f} ({r['won_lost']}, z {r['z']:+.1f})"
            for r in self.rows
        ]
        return ("promote: " if self.promote else "reject: ") + "; ".join(parts)


def cache_settings(version: VersionUnderTest, model_id: str, settings: GateSettings) -> dict[str, Any]:
    """What a cached evaluation must match: the problems, the search and the version's own
    sampling defaults (a tuned temperature lives beside the weights, not in their digest)."""
    return {
        "greedy_problems": settings.greedy_problems,
        "search": settings.search,
        "search_problems": settings.search_problems,
        "split_seed": settings.split_seed,
        "sampling": sampling_defaults(model_id, version.policy),
    }


async def evaluate_version(
    version: VersionUnderTest,
    model_id: str,
    prm_id: str | None,
    task: TrainableTask,
    settings: GateSettings,
    cache_dir: Path,
) -> dict[str, Cell]:
    """The version's greedy and search cells on the dev split, cached by what the weights are
    (a candidate of one round is the served parent of the next, under another label)."""
    cache = cache_dir / f"{version.digest()}.json"
    wanted = cache_settings(version, model_id, settings)
    if cache.is_file():
        raw = json.loads(cache.read_text())
        if raw["settings"] == wanted:
            return {name: Cell.from_json(c) for name, c in raw["cells"].items()}
    engine = EmbeddedEngine(model_id, EngineOptions(num_threads=settings.threads), model_dir=version.policy)
    await engine.start()
    prm = None if version.prm is None else PrmScorer(load_prm(version.prm))
    greedy_name, search_name = settings.cell_names()
    runs: list[tuple[str, int, PrmScorer | None, str | None, dict[str, Any]]]
    runs = [(greedy_name, settings.greedy_problems, None, None, GREEDY)]
    runs.append((search_name, settings.search_problems, prm, prm_id if prm else None, settings.search))
    cells: dict[str, Cell] = {}
    try:
        for name, num_problems, scorer, scorer_id, search in runs:
            if num_problems:
                config = offline_search_config(model_id, scorer_id, search, engine.card)
                messages = settings.messages(task, num_problems)
                cells[name] = await run_cell(
                    engine, scorer, messages, task.verify, config, settings.concurrency
                )
    finally:
        await engine.close()
    write_json_atomically(cache, {"settings": wanted, "cells": {k: asdict(c) for k, c in cells.items()}})
    return cells


def decide(candidate: dict[str, Cell], parent: dict[str, Cell], max_drop_z: float) -> Verdict:
    rows: list[dict[str, Any]] = []
    for name, mine in candidate.items():
        theirs = parent[name]
        rows.append(
            {
                "setting": name,
                "parent": theirs.accuracy,
                "candidate": mine.accuracy,
                "won_lost": mine.versus(theirs),
                "z": mine.paired_z(theirs),
                "num_problems": mine.num_problems,
            }
        )
    return Verdict(promote=all(r["z"] >= max_drop_z for r in rows), rows=rows)
