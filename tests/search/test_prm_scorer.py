"""The PRM scorer's share of the cores: on its own threads it scores beside an engine's pass,
on every core it waits for the pass to end."""

from __future__ import annotations

import asyncio

import pytest

from engine.turnstile import CoreTurnstile
from rewards.countdown.oracle_prm import OracleCountdownPRM
from rewards.countdown.problems import dev_problems, format_prompt
from search.context import PrmScorer

WAIT_S = 10.0


def reply_steps() -> tuple[str, list[str]]:
    problem = dev_problems(1)[0]
    return format_prompt(problem), ["99+1=100 (1,2,100)"]


@pytest.mark.parametrize(("threads", "waits"), [(1, False), (None, True)])
def test_a_scorer_on_one_core_runs_beside_a_pass_on_the_other(threads, waits):
    turnstile = CoreTurnstile(2)
    scorer = PrmScorer(OracleCountdownPRM(), lock=turnstile, threads=threads)
    prompt, steps = reply_steps()

    async def score_while_a_core_is_held() -> bool:
        turnstile.acquire(1)  # an engine's one-thread step, running
        task = asyncio.create_task(scorer.score(prompt, [steps]))
        done, _ = await asyncio.wait({task}, timeout=0.5)
        turnstile.release(1)
        scores = await asyncio.wait_for(task, WAIT_S)
        assert scores == [[0.0]]  # 99+1 is no step of this problem: the oracle says wrong
        return bool(done)

    try:
        assert asyncio.run(score_while_a_core_is_held()) is not waits
    finally:
        scorer.close()
    assert not turnstile.locked()
