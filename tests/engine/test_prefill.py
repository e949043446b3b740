"""Chunked prefill on the real SmolLM2: the same KV, logits and greedy tokens as one piece, and
the radix cache still reused across chunked prompts."""

from collections.abc import Iterator

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from engine.fast_decode import DecodeStep, FusedDecode, decode_step
from engine.models import resolve_model_dir
from engine.options import EngineOptions
from engine.prefill import ModelPrefill, PrefillJob, PrefillStep, advance, prefill_step, start_prefill
from engine.protocol import ChatMessage, SamplingParams
from engine.sequence import GroupState

from .conftest import SMOLLM2, EngineRunner

ONE_PIECE = 10**6  # a chunk larger than any prompt: the whole prompt in one forward pass
SMALL_CHUNK = 48
GREEDY = SamplingParams(max_new_tokens=10, temperature=0, ignore_eos=True)
STORY = "The lighthouse keeper counted ships each night and wrote their names in a ledger. "


def long_question(num_sentences: int) -> list[ChatMessage]:
    return [ChatMessage("user", STORY * num_sentences + "What did the keeper write down?")]


@pytest.fixture(scope="module")
def model() -> PreTrainedModel:
    return AutoModelForCausalLM.from_pretrained(resolve_model_dir(SMOLLM2), dtype=torch.float32).eval()


Steps = tuple[PrefillStep, DecodeStep]


@pytest.fixture(scope="module")
def steps(model: PreTrainedModel) -> dict[str, Steps]:
    """The engine's prefill and decode steps for each way of holding the weights."""
    decodes: dict[str, DecodeStep] = {"dense": decode_step(model), "int4": FusedDecode(model, "int4")}
    chosen = {name: (prefill_step(model, decode), decode) for name, decode in decodes.items()}
    assert isinstance(chosen["dense"][0], ModelPrefill)  # transformers' forward for dense
    assert chosen["int4"][0] == decodes["int4"].prefill  # type: ignore[attr-defined]
    return chosen


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[EngineRunner, EngineRunner]]:
    """A SmolLM2 engine prefilling in small chunks, and one prefilling each prompt in one piece."""
    chunked = EngineRunner(EngineOptions(prefill_chunk_tokens=SMALL_CHUNK))
    whole = EngineRunner(EngineOptions(prefill_chunk_tokens=ONE_PIECE))
    yield chunked, whole
    chunked.close()
    whole.close()


def prefill(
    model: PreTrainedModel, steps: Steps, prompt: list[int], chunk: int, cached: int = 0
) -> tuple[PrefillJob, int]:
    """The finished job and how many calls of `advance` it took."""
    group = GroupState(0, prompt, SamplingParams(), False, lambda event: None)
    prefix = None
    if cached:
        prefix, _ = prefill(model, steps, prompt[:cached], ONE_PIECE)
    job = start_prefill(group, model.config, None if prefix is None else prefix.kv(), cached)
    num_passes = 0
    with torch.inference_mode():
        while not job.is_done:
            advance(*steps, job, chunk)
            num_passes += 1
    return job, num_passes


TOLERANCE = {"dense": (1e-4, 1e-3), "int4": (0.5, 0.5)}
"""(KV, logits) atol between chunked and one-piece prefill: fp32 rounding for dense; for int4 the
bf16 activations round what attention over another width gives to the next bf16 step (measured:
at most 0.25 on KV up to 19, 0.125 on logits)."""


@pytest.mark.parametrize("weights", ["dense", "int4"])
@pytest.mark.parametrize(("chunk", "cached"), [(64, 0), (100, 0), (64, 37)])
def test_chunks_give_the_kv_and_logits_of_one_piece(model, steps, weights, chunk, cached):
    prompt = [(11 * i + 5) % 49152 for i in range(300)]
    whole, _ = prefill(model, steps[weights], prompt, ONE_PIECE, cached)
    chunked, num_passes = prefill(model, steps[weights], prompt, chunk, cached)
    assert num_passes == -(-(len(prompt) - cached) // chunk)  # really cut into chunks
    assert chunked.kv().shape == whole.kv().shape
    kv_atol, logits_atol = TOLERANCE[weights]
    assert torch.allclose(chunked.kv(), whole.kv(), atol=kv_atol)
    assert chunked.logits is not None and whole.logits is not None
    assert torch.allclose(chunked.logits, whole.logits, atol=logits_atol)
    assert int(chunked.logits.argmax()) == int(whole.logits.argmax())


def test_int4_prefill_gives_the_dense_kv_within_bf16_rounding(model, steps):
    """The int4 prompt pass computes with the GGUF's own weights (the dense ones are those,
    de-quantised) and bf16 activations: its KV and next-token logits stay that close to dense."""
    prompt = [(11 * i + 5) % 49152 for i in range(200)]
    dense, _ = prefill(model, steps["dense"], prompt, ONE_PIECE)
    int4, _ = prefill(model, steps["int4"], prompt, ONE_PIECE)
    assert torch.allclose(int4.kv(), dense.kv(), atol=0.5)  # measured: 0.19, on values up to 19
    assert dense.logits is not None and int4.logits is not None
    assert int(int4.logits.argmax()) == int(dense.logits.argmax())
    assert torch.allclose(int4.logits.softmax(-1), dense.logits.softmax(-1), atol=0.01)  # measured: 0.002


def test_chunked_engine_generates_what_a_one_piece_engine_does(engines):
    chunked, whole = engines
    prompts = [chunked.engine.apply_chat_template(long_question(n)) for n in (1, 8, 20)]
    assert max(len(p) for p in prompts) > 5 * SMALL_CHUNK
    expected = [whole.run(whole.engine.generate([p], GREEDY))[0][0].token_ids for p in prompts]
    got = chunked.run(chunked.engine.generate(prompts, GREEDY))  # prefilled together, round-robin
    assert [g[0].token_ids for g in got] == expected


def test_a_chunked_prompt_is_cached_and_reused(engines):
    chunked, whole = engines
    prompt = chunked.engine.apply_chat_template(long_question(12))
    [[first]] = chunked.run(chunked.engine.generate([prompt], GREEDY))
    extended = prompt + first.token_ids + chunked.engine.tokenize(" And then?")
    before = chunked.engine.cache_stats()
    [[out]] = chunked.run(chunked.engine.generate([extended], GREEDY))
    computed = chunked.engine.cache_stats().prompt_tokens_computed - before.prompt_tokens_computed
    assert out.num_cached_prompt_tokens >= len(prompt)  # the whole chunked prompt came from cache
    assert computed == len(extended) - out.num_cached_prompt_tokens
    assert out.token_ids == whole.run(whole.engine.generate([extended], GREEDY))[0][0].token_ids
    assert chunked.engine.cache_stats().locked_nodes == 0
