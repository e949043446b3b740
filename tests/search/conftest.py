"""The real bundled Countdown policy and PRM, loaded once per test module on one torch thread.

The engine tests need only the policy. When the PRM's weights are present every search uses it;
when they are not, searches score steps by the policy's own step probability (the documented
fallback) and the PRM-specific tests skip, saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import torch

from engine.embedded import EmbeddedEngine
from engine.models import is_available, resolve_model_dir
from engine.options import EngineOptions
from engine.protocol import ChatMessage
from rewards.countdown.problems import Problem, dev_problems, format_prompt
from rewards.countdown.verifier import verify_reply
from rewards.prm import load_prm
from search.context import PrmScorer, SearchContext

POLICY, PRM = "countdown", "countdown-prm"
T = TypeVar("T")


class SearchRunner:
    """An engine and a PRM on a private event loop, so sync tests can await searches."""

    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.loop = asyncio.new_event_loop()
        self.engine = EmbeddedEngine(POLICY, EngineOptions(num_threads=1, cache_capacity_mb=128))
        self.run(self.engine.start())
        self.prm = PrmScorer(load_prm(resolve_model_dir(PRM))) if is_available(PRM) else None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def prompt_ids(self, problem: Problem) -> list[int]:
        return self.engine.apply_chat_template([ChatMessage("user", format_prompt(problem))])

    def context(self, problem: Problem, **kwargs: Any) -> SearchContext:
        verifier = kwargs.pop("verifier", lambda reply: verify_reply(problem, reply))
        return SearchContext(self.engine, format_prompt(problem), prm=self.prm, verifier=verifier, **kwargs)

    def close(self) -> None:
        self.run(self.engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def runner() -> Iterator[SearchRunner]:
    if not is_available(POLICY):
        pytest.skip(f"bundled policy {POLICY!r} not trained yet (models/{POLICY}/config.json absent)")
    r = SearchRunner()
    yield r
    r.close()


@pytest.fixture(scope="module")
def prm_runner(runner: SearchRunner) -> SearchRunner:
    if runner.prm is None:
        pytest.skip(f"bundled PRM {PRM!r} not trained yet (models/{PRM}/config.json absent)")
    return runner


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return dev_problems(3)
