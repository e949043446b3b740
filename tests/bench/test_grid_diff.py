"""`bench.grid_diff`: cells of two grid runs compared on the same problems, and runs on other
problems refused."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.grid_diff import main
from trainer.evaluate import Cell

INFO = {"model": "countdown", "task": "countdown", "problem_seed": 7, "num_problems": 100, "scorer": "PRM x"}


def write_run(path: Path, solved: dict[tuple[str, int], range | list[int]], **info: object) -> Path:
    cells = [
        asdict(Cell(strategy, budget, 100, len(s) / 100, 50.0, 0, 0, 1.0, tuple(s), commit=path.stem))
        for (strategy, budget), s in solved.items()
    ]
    path.write_text(json.dumps(INFO | info | {"cells": cells}))
    return path


def test_cells_in_both_runs_get_paired_won_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = write_run(
        tmp_path / "old.json", {("beam", 512): range(30), ("mcts", 512): range(30), ("dvts", 512): []}
    )
    after = write_run(
        tmp_path / "new.json", {("beam", 512): [*range(2, 30), 40, 41, 42], ("mcts", 512): range(60)}
    )
    out = tmp_path / "diff.json"
    main([str(before), str(after), "--out", str(out)])
    rows = {r["strategy"]: r for r in json.loads(out.read_text())["cells"]}
    assert set(rows) == {"beam", "mcts"}  # dvts ran only before
    assert (rows["beam"]["won"], rows["beam"]["lost"], rows["beam"]["within_noise"]) == (3, 2, True)
    assert (rows["mcts"]["won"], rows["mcts"]["lost"], rows["mcts"]["within_noise"]) == (30, 0, False)
    assert rows["mcts"]["commits"] == ["old", "new"]
    assert "NO" in capsys.readouterr().out


def test_runs_on_other_problems_are_refused(tmp_path: Path) -> None:
    before = write_run(tmp_path / "old.json", {("beam", 512): range(30)})
    after = write_run(tmp_path / "new.json", {("beam", 512): range(30)}, problem_seed=8)
    with pytest.raises(SystemExit, match="problem_seed"):
        main([str(before), str(after), "--out", str(tmp_path / "d.json")])
