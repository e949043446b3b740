"""Training the claim checker: replies rewritten true, then a short fine-tune of the real policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewards.prm import ClaimCheckerPRM, load_prm
from trainer.checker import CheckerRun, checker_pairs, train_checker, true_steps
from trainer.loop import OptimConfig
from trainer.prm_data import LabelledReply, PrmDataConfig

POLICY = Path(__file__).resolve().parents[2] / "models" / "countdown"
PROMPT = "countdown target=93 numbers=4,7,25,50"


@pytest.mark.parametrize(
    ("steps", "rewritten"),
    [
        # a dead end whose last step claims the target: the claim is replaced by what 82+4 gives
        (
            ["50+25=75 (4,7,75)", "75+7=82 (4,82)", "82+4=93 (93)", "answer: (((50+25)+7)+4)"],
            ["50+25=75 (4,7,75)", "75+7=82 (4,82)", "82+4=86 (86)"],
        ),
        # a wrong numbers-left list is rewritten too
        (["50-25=25 (4,7,26)", "26*4=104 (7,104)"], ["50-25=25 (4,7,25)"]),
        # an invented operand ends the rewrite: nothing after it has a true state
        (["7*1=7 (4,25,50,7)", "50-25=25 (4,7,25)"], []),
        # an inexact division, a malformed line
        (["50/4=12 (7,25,12)"], []),
        (["50-25=25 (4,7,25)", "then 25*4"], ["50-25=25 (4,7,25)"]),
    ],
)
def test_true_steps(steps: list[str], rewritten: list[str]) -> None:
    assert true_steps(PROMPT, steps) == rewritten


def test_true_steps_uses_a_repeated_number_only_as_often_as_given() -> None:
    prompt = "countdown target=10 numbers=3,3,1,2"
    assert true_steps(prompt, ["3*3=9 (1,2,9)", "9+1=10 (2,10)"]) == ["3*3=9 (1,2,9)", "9+1=10 (2,10)"]
    assert true_steps(prompt, ["3*3=9 (1,2,9)", "3+1=4 (2,9,4)"]) == ["3*3=9 (1,2,9)"]


def test_checker_pairs_are_distinct_and_never_empty() -> None:
    records = [
        LabelledReply(PROMPT, ["50+25=75 (4,7,75)", "75+7=80 (4,80)"], [0.0, 0.0]),
        LabelledReply(PROMPT, ["50+25=75 (4,7,75)", "75+7=81 (4,81)"], [0.0, 0.0]),
        LabelledReply(PROMPT, ["7*1=7 (4,25,50,7)"], [0.0]),
    ]
    assert checker_pairs(records) == [(PROMPT, "50+25=75 (4,7,75)\n75+7=82 (4,82)")]


def test_train_checker_end_to_end_on_the_real_policy(tmp_path: Path) -> None:
    data = PrmDataConfig(labels="exact", num_problems=8, replies_per_problem=2, reply_temperature=0.3)
    run = CheckerRun(
        policy=POLICY,
        out=tmp_path / "checker",
        runs_dir=tmp_path / "runs",
        batch_size=4,
        data=data,
        optim=OptimConfig(steps=2, warmup=1, checkpoint_every=1),
    )
    assert len(train_checker(run)) == 2
    prm = load_prm(tmp_path / "checker")
    assert isinstance(prm, ClaimCheckerPRM)
    scores = prm.score_steps(PROMPT, ["50-25=25 (4,7,25)", "25*4=100 (7,100)"])
    assert len(scores) == 2 and all(0.0 < s <= 1.0 for s in scores)
