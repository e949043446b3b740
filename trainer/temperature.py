"""Tune a candidate policy's search temperature on the tuning split and write it into its folder.

Expert iteration sharpens the policy on its own sound replies. At the parent's temperature the
sharper policy samples fewer distinct steps, and MCTS, which lives on distinct rollouts, loses:
in round 1 the fine-tune fell from 0.363 to 0.313 at T=0.3 on 300 tuning problems, and rose to
0.380 at T=0.6 (`docs/learning.md`). So a candidate carries its own recommended temperature:
the gate's search setting runs on the tuning split at a few temperatures from the parent's
upwards, and one that beats the parent's beyond noise goes into the candidate's
`tuned_sampling.json`, which the server and the gate read as the version's sampling default
(`engine.models.sampling_defaults`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.models import TUNED_SAMPLING_FILE, sampling_defaults
from rewards.tasks import TrainableTask
from trainer.evaluate import Cell
from trainer.gate import GateSettings, VersionUnderTest, evaluate_version

TEMPERATURE_STEPS = (0.0, 0.15, 0.3, 0.45)
"""Offsets from the parent's temperature that are tried: fine-tunes only sharpen the policy."""
MAX_TEMPERATURE = 1.2
MIN_GAIN_Z = 1.645
"""How far (paired z, one-sided 5%) a temperature must beat the parent's on the tuning split to
replace it. Round 1 on 2026-12-03 chose T=0.6 for +2 points on 200 tuning problems (0.350 against
0.330, well within noise) and then lost 2.5 points on dev: picking the best of a few noisy
accuracies is itself a bias, so the parent's temperature stays unless the gain is real."""


@dataclass(frozen=True)
class TemperatureTuning:
    problems: int = 200
    steps: tuple[float, ...] = TEMPERATURE_STEPS


def candidate_temperatures(parent: float, steps: tuple[float, ...]) -> list[float]:
    return sorted({round(min(MAX_TEMPERATURE, parent + step), 2) for step in steps})


def write_temperature(folder: Path, temperature: float) -> None:
    """Record `temperature` as the version's tuned sampling default (`TUNED_SAMPLING_FILE`),
    which wins over the model table; the folder's generation_config.json stays the authors'."""
    path = folder / TUNED_SAMPLING_FILE
    tuned = json.loads(path.read_text()) if path.is_file() else {}
    tuned["temperature"] = temperature
    path.write_text(json.dumps(tuned, indent=2, sort_keys=True) + "\n")


def choose_temperature(cells: dict[float, Cell], parent: float, min_gain_z: float = MIN_GAIN_Z) -> float:
    """The most accurate temperature (ties: the coolest) if it beats the parent's by `min_gain_z`
    paired standard errors on the same problems; else the parent's."""
    best = max(cells, key=lambda t: (cells[t].accuracy, -t))
    if parent not in cells or best == parent:
        return best
    return best if cells[best].paired_z(cells[parent]) >= min_gain_z else parent


async def tune_temperature(
    candidate: VersionUnderTest,
    parent_policy: Path,
    model_id: str,
    prm_id: str | None,
    task: TrainableTask,
    gate: GateSettings,
    tuning: TemperatureTuning,
    split_seed: int,
    cache_dir: Path,
) -> dict[str, Any]:
    """Runs the gate's search at each temperature on the tuning split and keeps the one
    `choose_temperature` picks, written into the candidate's folder."""
    parent_temperature = sampling_defaults(model_id, parent_policy).get("temperature", 1.0)
    settings = replace(gate, greedy_problems=0, search_problems=tuning.problems, split_seed=split_seed)
    results: dict[float, Cell] = {}
    for temperature in candidate_temperatures(parent_temperature, tuning.steps):
        trial = replace(settings, search={**gate.search, "temperature": temperature})
        cache = cache_dir / f"t{temperature}"
        cells = await evaluate_version(candidate, model_id, prm_id, task, trial, cache)
        results[temperature] = next(iter(cells.values()))
        print(f"temperature {temperature}: {results[temperature].accuracy:.3f}", flush=True)
    best = choose_temperature(results, round(parent_temperature, 2))
    write_temperature(candidate.policy, best)
    return {
        "temperature": best,
        "parent_temperature": parent_temperature,
        "tuning_accuracy": {str(t): c.accuracy for t, c in results.items()},
        "tuning_problems": tuning.problems,
    }
