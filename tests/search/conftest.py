"""The real bundled Countdown policy and PRM, loaded once per test session on one torch thread.

`runner` is parametrized over the engine backends: every search test runs on the embedded engine
and, when the vllm extra is installed, again on vLLM. One engine of each kind serves every module:
a vLLM engine takes 40-45 s to start on two cores, and the tests read cache statistics as deltas,
so sharing an engine between modules changes nothing they assert.
The engine tests need only the policy. When the PRM's weights are present every search uses it;
when they are not, searches score steps by the policy's own step probability (the documented
fallback) and the PRM-specific tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import torch

from engine.embedded import EmbeddedEngine
from engine.models import is_available, resolve_model_dir
from engine.options import EngineOptions
from engine.protocol import ChatMessage, Engine
from rewards.countdown.problems import Problem, dev_problems, format_prompt
from rewards.countdown.verifier import verify_reply
from rewards.prm import load_prm
from search.context import PrmScorer, SearchContext

POLICY, PRM = "countdown", "countdown-prm"
T = TypeVar("T")
IS_VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None
ENGINES = [
    "embedded",
    pytest.param(
        "vllm",
        marks=[pytest.mark.vllm, pytest.mark.skipif(not IS_VLLM_INSTALLED, reason="vllm not installed")],
    ),
]
# vLLM reuses whole KV blocks only (32 tokens on the CPU), while these Countdown prompts and steps
# are ~20 tokens: most of a step's prefix is recomputed, so this radix-cache bound cannot hold.
BLOCK_GRANULAR_XFAIL = ("test_steps_reuse_their_parents_kv",)
BLOCK_GRANULAR_REASON = "vLLM reuses whole 32-token blocks: a step recomputes its prefix tail (> 2 tokens)"


def make_engine(backend: str) -> Engine:
    options = EngineOptions(num_threads=1, cache_capacity_mb=128, vllm_kv_cache_gib=0.25)
    if backend == "vllm":
        from engine.vllm import VllmEngine

        return VllmEngine(POLICY, options)
    return EmbeddedEngine(POLICY, options)


class SearchRunner:
    """An engine and a PRM on a private event loop, so sync tests can await searches."""

    def __init__(self, backend: str = "embedded") -> None:
        torch.set_num_threads(1)
        self.loop = asyncio.new_event_loop()
        self.backend = backend
        self.engine = make_engine(backend)
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


@pytest.fixture(scope="session", params=ENGINES)
def runner(request: pytest.FixtureRequest) -> Iterator[SearchRunner]:
    if not is_available(POLICY):
        pytest.skip(f"bundled policy {POLICY!r} not trained yet (models/{POLICY}/config.json absent)")
    r = SearchRunner(request.param)
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _xfail_block_granular_reuse_on_vllm(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("runner") == "vllm":
        if request.node.name.startswith(BLOCK_GRANULAR_XFAIL):
            request.applymarker(pytest.mark.xfail(reason=BLOCK_GRANULAR_REASON))


@pytest.fixture(scope="module")
def prm_runner(runner: SearchRunner) -> SearchRunner:
    if runner.prm is None:
        pytest.skip(f"bundled PRM {PRM!r} not trained yet (models/{PRM}/config.json absent)")
    return runner


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return dev_problems(3)
