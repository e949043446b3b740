"""The embedded engine on the real bundled SmolLM2: batching, prefix reuse, stops, seeds, cancel."""

import asyncio
import threading

import pytest

from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams

from .conftest import SMOLLM2, EngineRunner, assert_stream_matches, collect_stream, runner_decoding

GREEDY = SamplingParams(max_new_tokens=12, temperature=0)


def prompt(runner: EngineRunner, question: str) -> list[int]:
    return runner.engine.apply_chat_template([ChatMessage("user", question)])


def test_greedy_answer_is_sensible(runner):
    [[out]] = runner.run(runner.engine.generate([prompt(runner, "What is the capital of France?")], GREEDY))
    assert "Paris" in out.text
    assert out.finish_reason in ("stop", "length")
    assert out.text == runner.engine.detokenize(out.token_ids)


def test_dense_batched_greedy_equals_one_at_a_time():
    """fp32 decode is batch-invariant; int4's bf16 activations are not at near-ties (bundled.toml)."""
    dense = runner_decoding("dense", EngineOptions(cache_capacity_mb=64))
    try:
        prompts = [prompt(dense, q) for q in ("Name a color.", "Count to five.", "What is 2+2?")]
        alone = [dense.run(dense.engine.generate([p], GREEDY))[0][0].token_ids for p in prompts]
        together = dense.run(dense.engine.generate(prompts, GREEDY))
        assert [g[0].token_ids for g in together] == alone
        assert_a_cached_prompt_repeats(dense, "Which planet has rings?")
    finally:
        dense.close()


def test_second_request_reuses_the_cached_prompt(runner):
    p = prompt(runner, "Tell me about the Moon in one sentence.")
    runner.run(runner.engine.generate([p], GREEDY))
    before = runner.engine.cache_stats()
    [[out]] = runner.run(runner.engine.generate([p], GREEDY))
    after = runner.engine.cache_stats()
    assert out.num_cached_prompt_tokens == len(p) - 1
    assert after.prompt_tokens_computed - before.prompt_tokens_computed == 1


def test_extending_a_finished_branch_computes_only_new_tokens(runner):
    p = prompt(runner, "List three fruits.")
    [[step]] = runner.run(runner.engine.generate([p], GREEDY))
    child = p + step.token_ids
    before = runner.engine.cache_stats()
    [[out]] = runner.run(runner.engine.generate([child], GREEDY))
    computed = runner.engine.cache_stats().prompt_tokens_computed - before.prompt_tokens_computed
    assert computed <= 2  # the last sampled token of the parent, plus the recomputed final token
    assert out.num_cached_prompt_tokens >= len(child) - 2


def test_n_samples_share_one_prefill_and_seed_reproduces(runner):
    p = prompt(runner, "Write a word.")
    params = SamplingParams(max_new_tokens=8, temperature=1.0, n=4, seed=7)
    before = runner.engine.cache_stats()
    first = runner.run(runner.engine.generate([p], params))[0]
    assert runner.engine.cache_stats().prompt_tokens_requested - before.prompt_tokens_requested == len(p)
    second = runner.run(runner.engine.generate([p], params))[0]
    assert [c.token_ids for c in first] == [c.token_ids for c in second]
    assert len({tuple(c.token_ids) for c in first}) > 1  # different samples, not copies


def assert_a_cached_prompt_repeats(runner: EngineRunner, question: str) -> None:
    """The last prompt token is computed alone from the same KV either way (engine/prefill.py),
    so neither its logprobs nor a seeded sample move when the prompt comes from the cache."""
    p = prompt(runner, question)
    params = SamplingParams(max_new_tokens=6, temperature=1.0, n=4, seed=3, logprobs=True, top_logprobs=5)
    fresh = runner.run(runner.engine.generate([p], params))[0]
    cached = runner.run(runner.engine.generate([p], params))[0]
    assert cached[0].num_cached_prompt_tokens == len(p) - 1 > fresh[0].num_cached_prompt_tokens
    assert [c.logprobs for c in cached] == [c.logprobs for c in fresh]
    assert fresh[0].logprobs is not None


def test_a_cached_prompt_gives_the_same_bits(runner):
    assert_a_cached_prompt_repeats(runner, "Which planet has rings?")


@pytest.mark.parametrize("include", [False, True])
def test_stop_string_cuts_the_text(runner, include):
    p = prompt(runner, "Count from 1 to 9 separated by commas.")
    params = SamplingParams(max_new_tokens=30, temperature=0, stop=("3",), include_stop_str_in_output=include)
    [[out]] = runner.run(runner.engine.generate([p], params))
    assert out.finish_reason == "stop" and out.stop_str == "3"
    assert out.text.endswith("3") if include else "3" not in out.text


@pytest.mark.parametrize("max_new", [0, 1, 5])
def test_max_new_tokens_is_exact(runner, max_new):
    params = SamplingParams(max_new_tokens=max_new, temperature=0, ignore_eos=True)
    [[out]] = runner.run(runner.engine.generate([prompt(runner, "Hello")], params))
    assert len(out.token_ids) == max_new and out.finish_reason == "length"


def test_logprobs_are_reported_per_token(runner):
    params = SamplingParams(max_new_tokens=4, temperature=0, logprobs=True, top_logprobs=3, ignore_eos=True)
    [[out]] = runner.run(runner.engine.generate([prompt(runner, "Hi")], params))
    assert out.logprobs is not None and len(out.logprobs) == 4
    for lp in out.logprobs:
        assert len(lp.top) == 3 and lp.top[0][0] == lp.token_id  # greedy picks the top token
        assert lp.logprob <= 0
    assert out.cumulative_logprob == pytest.approx(sum(lp.logprob for lp in out.logprobs), abs=1e-4)


def test_stream_deltas_add_up_to_the_result(runner):
    p = prompt(runner, "Say hello to the world.")
    deltas = runner.run(collect_stream(runner.engine, p, GREEDY))
    [[full]] = runner.run(runner.engine.generate([p], GREEDY))
    assert_stream_matches(deltas, full)


def test_cancel_releases_cache_references(runner):
    p = prompt(runner, "Write a long story about a dragon.")
    params = SamplingParams(max_new_tokens=500, temperature=0, n=2, ignore_eos=True)

    async def start_then_cancel():
        task = asyncio.ensure_future(runner.engine.generate([p], params))
        while runner.engine.cache_stats().running_sequences == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            s = runner.engine.cache_stats()
            if s.running_sequences == 0 and s.locked_nodes == 0:
                return s
            await asyncio.sleep(0.02)
        return runner.engine.cache_stats()

    stats = runner.run(start_then_cancel())
    assert stats.running_sequences == 0 and stats.locked_nodes == 0


@pytest.mark.parametrize(
    ("ids", "message"),
    [([], "at least one token"), ([10**9], "outside the vocabulary"), ([1] * 9000, "context")],
)
def test_bad_prompts_are_rejected_before_any_work(runner, ids, message):
    before = runner.engine.cache_stats()
    with pytest.raises(ValueError, match=message):
        runner.run(runner.engine.generate([ids], GREEDY))
    assert runner.engine.cache_stats().prompt_tokens_requested == before.prompt_tokens_requested


def test_every_kind_of_request_leaves_no_locks_behind(runner):
    p = prompt(runner, "Hi")
    for params in (
        SamplingParams(max_new_tokens=0),
        SamplingParams(max_new_tokens=3, n=3, seed=1),
        SamplingParams(max_new_tokens=3, temperature=0, stop=("a", "e")),
    ):
        runner.run(runner.engine.generate([p, p], params))
        stats = runner.engine.cache_stats()
        assert stats.locked_nodes == 0 and stats.running_sequences == 0, params


def test_card_carries_the_models_recommended_sampling(runner):
    assert runner.engine.card.sampling_defaults == {"temperature": 0.2, "top_p": 0.9}


def test_the_model_loads_on_a_thread_that_ended(runner):
    """Nothing of the load outlives it (engine/loader_thread.py)."""
    assert not [t.name for t in threading.enumerate() if t.name.startswith("ponder-load-")]


def test_the_bundled_smollm2_decodes_int4(runner, caplog):
    """...and the load logs how far quantising moved the weights: not at all for SmolLM2's Q4_1
    layers; the head's 8-bit rounding is what the figure shows."""
    from engine.decode_weights import Int4, Int8Rows

    step = runner.engine._worker.decode
    assert isinstance(step.layers[0].qkv, Int4) and isinstance(step.lm_head, Int8Rows)
    caplog.set_level("INFO", logger="engine.embedded")
    again = runner_decoding("int4", EngineOptions(cache_capacity_mb=64))
    again.close()
    assert f"{SMOLLM2} decodes int4 weights: largest weight change" in caplog.text
