"""One learning round's progress on disk, so that a killed round resumes where it stopped.

`runs/learn/<model>/round-NN/state.json` records the round's inputs (the versions it started
from, its seed) and, per stage, its outputs and wall time once the stage is complete. It is
rewritten atomically after every stage; a stage that was interrupted is simply run again, and
each stage resumes its own partial work (collection parts, training checkpoints).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.versions import write_atomically

STATE_FILE = "state.json"


@dataclass
class RoundState:
    folder: Path
    body: dict[str, Any]

    @classmethod
    def open(cls, folder: Path, inputs: dict[str, Any]) -> RoundState:
        """The round in `folder`, created with `inputs` if it does not exist yet."""
        path = folder / STATE_FILE
        if path.is_file():
            return cls(folder, json.loads(path.read_text()))
        folder.mkdir(parents=True, exist_ok=True)
        state = cls(folder, {**inputs, "started": time.time(), "stages": {}, "finished": None})
        state.save()
        return state

    @staticmethod
    def is_finished_at(folder: Path) -> bool:
        path = folder / STATE_FILE
        return path.is_file() and json.loads(path.read_text()).get("finished") is not None

    @property
    def round(self) -> int:
        return int(self.body["round"])

    @property
    def is_finished(self) -> bool:
        return self.body.get("finished") is not None

    def is_done(self, stage: str) -> bool:
        return stage in self.body["stages"]

    def outputs(self, stage: str) -> dict[str, Any]:
        return dict(self.body["stages"].get(stage, {}))

    def complete(self, stage: str, outputs: dict[str, Any], seconds: float) -> None:
        self.body["stages"][stage] = {**outputs, "seconds": round(seconds, 1)}
        self.save()

    def rewind(self, stages: list[str]) -> None:
        """Forget `stages` (and that the round finished), so they run again."""
        for stage in stages:
            self.body["stages"].pop(stage, None)
        self.body["finished"] = None
        self.save()

    def finish(self) -> None:
        self.body["finished"] = time.time()
        self.save()

    def save(self) -> None:
        write_atomically(self.folder / STATE_FILE, json.dumps(self.body, indent=2, sort_keys=True) + "\n")


def round_folders(model_root: Path) -> list[Path]:
    return sorted(p for p in model_root.glob("round-*") if p.is_dir())


def last_finished_time(model_root: Path) -> float:
    """When the newest finished round ended (0 before any): traces after it are new."""
    times = [
        float(body["finished"])
        for folder in round_folders(model_root)
        if (path := folder / STATE_FILE).is_file() and (body := json.loads(path.read_text())).get("finished")
    ]
    return max(times, default=0.0)
