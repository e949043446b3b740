"""Tune a candidate policy's search temperature on the tuning split and write it into its folder.

Expert iteration sharpens the policy on its own sound replies. At the parent's temperature the
sharper policy samples fewer distinct steps, and MCTS, which lives on distinct rollouts, loses:
in round 1 the fine-tune fell from 0.363 to 0.313 at T=0.3 on 300 tuning problems, and rose to
0.380 at T=0.6 (`docs/learning.md`). So a candidate carries its own recommended temperature:
the gate's search setting runs on the tuning split at a few temperatures from the parent's
upwards, and the best one goes into the candidate's `tuned_sampling.json`, which the server and
the gate read as the version's sampling default (`engine.models.sampling_defaults`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.models import TUNED_SAMPLING_FILE, sampling_defaults
from rewards.tasks import TrainableTask
from trainer.gate import GateSettings, VersionUnderTest, evaluate_version

TEMPERATURE_STEPS = (0.0, 0.15, 0.3, 0.45)
"""Offsets from the parent's temperature that are tried: fine-tunes only sharpen the policy."""
MAX_TEMPERATURE = 1.2


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
    """Runs the gate's search at each temperature on the tuning split and keeps the most accurate
    (ties: the coolest, nearest the parent), written into the candidate's folder."""
    parent_temperature = sampling_defaults(model_id, parent_policy).get("temperature", 1.0)
    settings = replace(gate, greedy_problems=0, search_problems=tuning.problems, split_seed=split_seed)
    accuracy: dict[float, float] = {}
    for temperature in candidate_temperatures(parent_temperature, tuning.steps):
        trial = replace(settings, search={**gate.search, "temperature": temperature})
        cache = cache_dir / f"t{temperature}"
        cells = await evaluate_version(candidate, model_id, prm_id, task, trial, cache)
        accuracy[temperature] = next(iter(cells.values())).accuracy
        print(f"temperature {temperature}: {accuracy[temperature]:.3f}", flush=True)
    best = max(accuracy, key=lambda t: (accuracy[t], -t))
    write_temperature(candidate.policy, best)
    return {
        "temperature": best,
        "parent_temperature": parent_temperature,
        "tuning_accuracy": {str(t): a for t, a in accuracy.items()},
        "tuning_problems": tuning.problems,
    }
