"""The claim-checker PRM: how a step's claim is scored, and the bundled checker on true and
false steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rewards.countdown.problems import dev_problems, format_prompt
from rewards.countdown.solver import Step, solve_routes
from rewards.countdown.steps import format_reply, format_step, parse_step
from rewards.prm import ClaimCheckerPRM, detect_style, load_prm
from rewards.prm_checker import claim_scores

CHECKER = Path(__file__).resolve().parents[2] / "models" / "countdown-checker"
needs_checker = pytest.mark.skipif(not (CHECKER / "config.json").exists(), reason="checker not trained")

EQ, NL, EOS = 9, 8, 2  # stand-in ids: the claim starts after EQ, steps end at NL or EOS


def test_a_step_scores_the_product_of_its_claim_tokens_only() -> None:
    #        prompt NL | 1  +  1  EQ  2  NL | 3  EQ  4  NL | answer EOS
    ids = [5, NL, 1, 7, 1, EQ, 3, NL, 4, EQ, 6, NL, 0, EOS]
    logprobs = [0.0, -9.0, -5.0, -5.0, -5.0, -5.0, -1.0, -0.5, -7.0, -7.0, -2.0, 0.0, -3.0, -3.0]
    scores = claim_scores(logprobs, ids, EQ, {NL, EOS})
    assert scores[1] == 1.0  # the prompt claims nothing
    assert scores[7] == pytest.approx(math.exp(-1.5))  # `2` and its NL, not the operands
    assert scores[11] == pytest.approx(math.exp(-2.0))  # reset after the first step
    assert scores[13] == 1.0  # the answer line has no `=`


@needs_checker
def test_the_bundled_checker_prefers_true_steps_to_the_same_steps_made_false() -> None:
    prm = load_prm(CHECKER)
    assert isinstance(prm, ClaimCheckerPRM) and detect_style(CHECKER) == "claim-checker"
    items = []
    for problem in dev_problems(24):
        steps = format_reply(solve_routes(problem.numbers, problem.target)[0]).split("\n")
        last = parse_step(steps[2])
        wrong = Step(last.left, last.op, last.right, last.result + 1, (last.result + 1,))
        items += [(format_prompt(problem), steps), (format_prompt(problem), [*steps[:2], format_step(wrong)])]
    scores = prm.score_batch(items)
    true_last = [s[2] for s in scores[0::2]]
    false_last = [s[2] for s in scores[1::2]]
    assert sum(t > f for t, f in zip(true_last, false_last, strict=True)) >= 22
    assert all(s[3] == 1.0 for s in scores[0::2])  # the answer line claims nothing
    assert all(0.0 < x <= 1.0 for s in scores for x in s)
