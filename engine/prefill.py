"""Chunked prefill: a prompt's KV is computed a bounded number of tokens at a time.

A prompt prefilled in one forward pass holds the compute lock for as long as the whole prompt
takes (a 7,900-token prompt to SmolLM2 took 41 s), and every other request of every model waits
behind it. Cut into chunks, a long prompt costs one chunk per engine step, and between two
chunks the running sequences take their decode step, a short prompt gets its own prefill, and
the other models get their turn at the lock: the schedule of vLLM's and SGLang's chunked
prefill. The chunk size is `engine.options.PREFILL_CHUNK_TOKENS`.

Each chunk attends to the KV of every earlier chunk, so the result equals a one-piece prefill up
to float rounding (tests/engine/test_prefill.py compares them).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import DynamicCache, PretrainedConfig, PreTrainedModel

from engine.fast_decode import DecodeStep, FusedDecode
from engine.growable_cache import cache_kv, growable_cache
from engine.sequence import GroupState


@dataclass(eq=False)
class PrefillJob:
    """A prompt part-way through its prefill: the KV of its first `num_done` tokens is in `past`."""

    group: GroupState
    past: DynamicCache
    num_done: int  # prompt tokens whose KV is computed, the cached prefix included
    num_cached: int  # of those, how many came from the prefix cache
    logits: torch.Tensor | None = None  # (V,) after the last prompt token, once done

    @property
    def num_remaining(self) -> int:
        return len(self.group.prompt_ids) - self.num_done

    @property
    def is_done(self) -> bool:
        return self.num_remaining == 0

    def kv(self) -> torch.Tensor:
        """(L, 2, H, T, D): the KV of the whole prompt, for the batch and the radix cache."""
        return cache_kv(self.past)


def start_prefill(
    group: GroupState, config: PretrainedConfig, prefix_kv: torch.Tensor | None, num_cached: int
) -> PrefillJob:
    """A job that resumes after `num_cached` prompt tokens whose KV (L, 2, H, T, D) is `prefix_kv`."""
    past = growable_cache(config)  # appends in place: chunk k must not copy chunks 1..k-1 again
    if prefix_kv is not None:
        for layer in range(prefix_kv.shape[0]):
            past.update(prefix_kv[layer, 0].unsqueeze(0), prefix_kv[layer, 1].unsqueeze(0), layer)
    return PrefillJob(group, past, num_done=num_cached, num_cached=num_cached)


class PrefillStep(Protocol):
    def __call__(self, ids: torch.Tensor, start: int, cache: DynamicCache) -> None:
        """Appends the KV of `ids` (T,), one sequence's tokens from position `start`, to `cache`."""
        ...


class ModelPrefill:
    """transformers' forward pass: every architecture, on the model's own (fp32) weights."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.keep_logits = _last_logits(model)

    def __call__(self, ids: torch.Tensor, start: int, cache: DynamicCache) -> None:
        positions = torch.arange(start, start + ids.shape[0]).unsqueeze(0)  # (1, T)
        self.model(
            input_ids=ids.unsqueeze(0),
            past_key_values=cache,
            position_ids=positions,
            use_cache=True,
            **self.keep_logits,
        )


def prefill_step(model: PreTrainedModel, decode: DecodeStep) -> PrefillStep:
    """A quantised model's prompts go through its fused layers, on the weights its decode steps
    use: the int4 kernel is 1.5-2x fp32's matmul at 35-512 rows as well (SmolLM2's projections),
    and the KV then comes from the same weights as every later token's. Dense models keep
    transformers' forward, whose output the fused step only matches within rounding."""
    if isinstance(decode, FusedDecode) and decode.is_quantised:
        return decode.prefill
    return ModelPrefill(model)


def advance(prefill: PrefillStep, decode: DecodeStep, job: PrefillJob, max_tokens: int) -> int:
    """Compute the KV of up to `max_tokens` more prompt tokens; returns how many it computed.

    The prompt's last token goes through `decode`, the step every generated token takes, in a
    pass of its own. A prompt served from the radix cache recomputes only that token, so with
    it always computed alone from the same KV, the first token's logits are the same bits
    whether or not the prompt was cached: a seeded request repeats itself exactly. (Computed
    as the last row of the prompt's pass instead, its logits differed in the last bits, which an
    int4 model's bf16 activations turn into a different token at near-ties.)"""
    prompt = job.group.prompt_ids
    last = len(prompt) - 1
    start = job.num_done
    end = min(last, start + max_tokens)
    if end > start:
        prefill(torch.tensor(prompt[start:end]), start, job.past)
    job.num_done = end
    if end == last and end - start < max_tokens:
        ids, positions = torch.tensor([prompt[last]]), torch.tensor([last])
        job.logits = decode(ids, positions, job.past, torch.ones(1, len(prompt)))[0]
        job.num_done = len(prompt)
    return job.num_done - start


def _last_logits(model: PreTrainedModel) -> dict[str, int]:
    """Ask for the last position's logits only, where the model class allows it: a chunk's
    logits are never read, and for SmolLM2's 49k vocabulary all (T, V) of them take more memory
    than the chunk's KV (a one-piece 7,900-token prompt made 1.5 GB of them)."""
    is_supported = "logits_to_keep" in inspect.signature(model.forward).parameters  # under 1 ms a chunk
    return {"logits_to_keep": 1} if is_supported else {}
