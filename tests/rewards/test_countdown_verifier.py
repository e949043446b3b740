"""Outcome verifier, step parsing and the exact step labeller."""

from __future__ import annotations

import pytest

from rewards.countdown.problems import Problem
from rewards.countdown.solver import Step
from rewards.countdown.steps import format_step, parse_step, split_reply
from rewards.countdown.verifier import (
    NEUTRAL,
    first_error_index,
    grade_steps,
    label_steps,
    verify_answer_line,
    verify_reply,
)

PROBLEM = Problem((4, 7, 25, 50), 93)
GOOD_STEPS = ["50-25=25 (4,7,25)", "25*4=100 (7,100)", "100-7=93 (93)"]
GOOD_REPLY = "\n".join([*GOOD_STEPS, "answer: (((50-25)*4)-7)"])


@pytest.mark.parametrize(
    "answer",
    ["answer: (((50-25)*4)-7)", "answer: (50-25)*4-7", "answer: ((4*(50-25))-7)", "answer: 4*(50-25)-7"],
)
def test_verifier_accepts_correct_answers(answer: str) -> None:
    assert verify_answer_line(PROBLEM, answer)
    assert verify_reply(PROBLEM, "\n".join([*GOOD_STEPS, answer]))


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("\n".join([*GOOD_STEPS, "answer: (((50-25)*4)-6)"]), "number not given"),
        ("\n".join([*GOOD_STEPS, "answer: (((50-25)*4)+7)"]), "wrong target"),
        ("answer: ((50+50)-7)", "reused number, others unused"),
        ("answer: (((50+25)+7)+4)", "uses all numbers, wrong value"),
        ("answer: ((4-7)+96)", "negative intermediate"),
        ("answer: (((50-25)*4)-7", "unbalanced"),
        ("answer: 50-25*", "malformed"),
        ("answer: 93", "just the target"),
        ("\n".join(GOOD_STEPS), "no answer line"),
        (GOOD_REPLY + "\n100-7=93 (93)", "text after the answer"),
        ("", "empty"),
    ],
)
def test_verifier_rejects(reply: str, why: str) -> None:
    assert not verify_reply(PROBLEM, reply), why


def test_exact_division_only() -> None:
    problem = Problem((7, 2, 3, 1), 10)
    assert not verify_reply(problem, "answer: ((7/2)*(3-1))")
    assert verify_reply(problem, "answer: ((7+3)*(2-1))")


@pytest.mark.parametrize(
    ("steps", "answer", "labels", "first_error"),
    [
        (GOOD_STEPS, "answer: (((50-25)*4)-7)", [True, True, True, True], None),
        (
            ["50-25=25 (4,7,25)", "25*4=90 (7,90)", "90+7=97 (97)"],
            "answer: (((50-25)*4)-7)",
            [True, False, False, True],
            1,
        ),
        (
            ["50-26=24 (4,7,24)", "24*4=96 (7,96)", "96-7=89 (89)"],
            "answer: (((50-26)*4)-7)",
            [False, False, False, False],
            0,
        ),
        (["50-25=25 (4,7,26)", *GOOD_STEPS[1:]], "answer: (((50-25)*4)-7)", [False, False, False, True], 0),
        ([*GOOD_STEPS[:2], "100+7=107 (107)"], "answer: (((50-25)*4)+7)", [True, True, False, False], 2),
        (
            ["50+25=75 (4,7,75)", "75+7=82 (4,82)", "82+4=86 (86)"],
            "answer: (((50+25)+7)+4)",
            [False, False, False, False],
            0,
        ),
        (["50-25 gives 25", *GOOD_STEPS[1:]], "answer: (((50-25)*4)-7)", [False, False, False, True], 0),
        (GOOD_STEPS, None, [True, True, True], None),
    ],
)
def test_label_steps(
    steps: list[str], answer: str | None, labels: list[bool], first_error: int | None
) -> None:
    reply = "\n".join(steps + ([answer] if answer else []))
    assert label_steps(PROBLEM, reply) == labels
    assert first_error_index(labels) == first_error


def test_dead_end_first_step_is_an_error() -> None:
    # 75 with 4 and 7 can make 86, 103, 78, ... but never 93
    assert label_steps(PROBLEM, "50+25=75 (4,7,75)") == [False]


@pytest.mark.parametrize(
    ("steps", "answer", "grades"),
    [
        (GOOD_STEPS, "answer: (((50-25)*4)-7)", [1.0, 1.0, 1.0, 1.0]),
        # a dead end: every step is right, so each is neutral, not wrong
        (
            ["50+25=75 (4,7,75)", "75+7=82 (4,82)", "82+4=86 (86)"],
            "answer: (((50+25)+7)+4)",
            [NEUTRAL] * 3 + [0.0],
        ),
        # a dead end, then the policy's typical slip: a false equation that claims the target
        (
            ["50+25=75 (4,7,75)", "75+7=82 (4,82)", "82+4=93 (93)"],
            "answer: (((50+25)+7)+4)",
            [NEUTRAL] * 2 + [0.0] * 2,
        ),
        # an invented operand: wrong, and so is everything after it
        (["7*1=7 (4,25,50,7)", "50-25=25 (4,7,25)"], None, [0.0, 0.0]),
        # right, then a wrong remaining list
        (
            ["50-25=25 (4,7,25)", "25*4=100 (7,99)", "100-7=93 (93)"],
            "answer: (((50-25)*4)-7)",
            [1.0, 0.0, 0.0, 1.0],
        ),
    ],
)
def test_grade_steps_separates_dead_ends_from_wrong_steps(
    steps: list[str], answer: str | None, grades: list[float]
) -> None:
    assert grade_steps(PROBLEM, "\n".join(steps + ([answer] if answer else []))) == grades


@pytest.mark.parametrize("line", ["79+17=96 (54,4,96)", "100/4=25 (25)", "3*3=9 (3,3,9)"])
def test_step_round_trip(line: str) -> None:
    assert format_step(parse_step(line)) == line


@pytest.mark.parametrize(
    "line", ["79+17=96", "79+17=96 ()", "79x17=96 (1)", "answer: (1+2)", "79+17=96 (54,4,96) extra"]
)
def test_parse_step_rejects_malformed(line: str) -> None:
    with pytest.raises(ValueError):
        parse_step(line)


def test_parse_step_reads_fields() -> None:
    assert parse_step("79+17=96 (54,4,96)") == Step(79, "+", 17, 96, (54, 4, 96))


def test_split_reply() -> None:
    parts = split_reply(GOOD_REPLY + "\n")
    assert parts.step_lines == GOOD_STEPS
    assert parts.answer_line == "answer: (((50-25)*4)-7)"
    assert split_reply("1+2=3 (3)").answer_line is None
