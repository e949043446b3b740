"""A version's tuned sampling temperature wins over the bundled table, so a learned version
searches at the temperature it was tuned at (on the server and in the gate)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.models import REPO_ROOT, sampling_defaults
from trainer.evaluate import Cell
from trainer.gate import GateSettings, VersionUnderTest, cache_settings
from trainer.temperature import candidate_temperatures, choose_temperature, write_temperature


def test_the_bundled_table_applies_to_a_folder_that_does_not_sample() -> None:
    assert sampling_defaults("countdown", REPO_ROOT / "models/countdown") == {"temperature": 0.3}


def test_a_tuned_temperature_overrides_the_table_and_the_table_the_authors(tmp_path: Path) -> None:
    folder = tmp_path / "candidate"
    shutil.copytree(REPO_ROOT / "models/countdown", folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=1.0, top_p=0.9)
    (folder / "generation_config.json").write_text(json.dumps(config))
    assert sampling_defaults("countdown", folder) == {"temperature": 0.3, "top_p": 0.9}
    write_temperature(folder, 0.6)
    assert sampling_defaults("countdown", folder) == {"temperature": 0.6, "top_p": 0.9}
    (folder / "generation_config.json").unlink()
    assert sampling_defaults("countdown", folder) == {"temperature": 0.6}
    assert sampling_defaults("countdown", REPO_ROOT / "models/countdown") == {"temperature": 0.3}


def test_temperatures_tried_go_up_from_the_parent_and_are_capped() -> None:
    assert candidate_temperatures(0.3, (0.0, 0.15, 0.3, 0.45)) == [0.3, 0.45, 0.6, 0.75]
    assert candidate_temperatures(1.1, (0.0, 0.15, 0.3)) == [1.1, 1.2]


def test_the_gate_cache_tells_temperatures_apart(tmp_path: Path) -> None:
    """Same weights, another recommended temperature: a cached evaluation must not be reused."""
    folder = tmp_path / "candidate"
    shutil.copytree(REPO_ROOT / "models/countdown", folder)
    version = VersionUnderTest("c", folder, None)
    before = cache_settings(version, "countdown", GateSettings())
    write_temperature(folder, 0.45)
    assert cache_settings(version, "countdown", GateSettings()) != before


def _cell(solved: tuple[int, ...], num_problems: int = 200) -> Cell:
    return Cell("mcts", 1024, num_problems, len(solved) / num_problems, 0, 0, 0, 0, solved)


def test_a_hotter_temperature_wins_only_beyond_noise() -> None:
    parent = _cell(tuple(range(66)))  # 0.330
    noisy = _cell(tuple(range(4, 74)))  # 0.350: +8/-4 on the same problems
    clear = _cell(tuple(range(100)))  # 0.500: +34/-0
    assert choose_temperature({0.3: parent, 0.6: noisy}, parent=0.3) == 0.3
    assert choose_temperature({0.3: parent, 0.6: noisy, 0.75: clear}, parent=0.3) == 0.75
    assert choose_temperature({0.3: parent, 0.6: noisy}, parent=0.3, min_gain_z=0.5) == 0.6
