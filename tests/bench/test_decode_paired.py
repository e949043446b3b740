"""`bench.decode_paired` end to end on the real Countdown policy, at a tiny size: both decode
steps run for every problem and raw batch, and the speedups are their ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.decode_paired import main


@pytest.fixture
def keep_threads():  # type: ignore[no-untyped-def]
    """The bench sets torch's thread count for the whole process: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("keep_threads")
def test_every_cell_is_run_with_both_decode_steps(tmp_path: Path) -> None:
    out = tmp_path / "paired.json"
    main(
        ["--problems", "1", "--budgets", "120", "--strategies", "best_of_n", "--batches", "2"]
        + ["--raw-steps", "2", "--threads", "1", "--out", str(out)]
    )
    cells = {c["request"]: c for c in json.loads(out.read_text())["cells"]}
    assert set(cells) == {"raw batch 2", "best_of_n@120"}
    search = cells["best_of_n@120"]
    assert search["num_problems"] == 1
    assert search["fused_median_s"] > 0 and search["model_median_s"] > 0
    assert search["fused_tokens_per_s"] > 0 and search["model_tokens_per_s"] > 0
    raw = cells["raw batch 2"]
    assert raw["speedup"] == pytest.approx(raw["fused_tokens_per_s"] / raw["model_tokens_per_s"])
