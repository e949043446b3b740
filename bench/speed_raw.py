"""The hardware's side of the speed bench: the policy's raw batched decode rate, and a meter on
the engine's own forward passes.

The raw rate is the model's forward pass with a KV cache at a fixed batch size, nothing else:
no scheduler, no sampling beyond an argmax, no padding, no radix cache. The meter hangs torch
forward hooks on the engine's model (engine files stay untouched) and counts every decode step's
rows and every prefill, so a search's live batch is measured per step, not guessed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel

from bench.speed_stats import ForwardCounts
from engine.embedded import EmbeddedEngine
from engine.growable_cache import growable_cache
from engine.protocol import COMPUTE_LOCK

WARMUP_STEPS = 3
"""Decode steps run and discarded before timing: the first calls allocate and pick kernels."""


def engine_model(engine: EmbeddedEngine) -> PreTrainedModel:
    """The model the engine's worker runs (instrumentation reaches in; the engine is unchanged)."""
    worker = engine._worker
    if worker is None:
        raise RuntimeError("start the engine before measuring it")
    return worker.model


def raw_decode_rate(model: PreTrainedModel, prompt_ids: Sequence[int], batch: int, steps: int) -> float:
    """Tokens/s of `steps` greedy decode steps of `batch` copies of `prompt_ids`, after their
    prefill, with the engine's growable KV cache; holds the compute lock the engine takes."""
    with COMPUTE_LOCK, torch.inference_mode():
        cache = growable_cache(model.config)
        ids = torch.tensor([list(prompt_ids)] * batch)  # (B, T)
        out = model(input_ids=ids, past_key_values=cache, use_cache=True)
        position = len(prompt_ids)
        began = 0.0
        for step in range(WARMUP_STEPS + steps):
            if step == WARMUP_STEPS:
                began = time.perf_counter()
            next_ids = out.logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
            positions = torch.full((batch, 1), position)
            out = model(input_ids=next_ids, past_key_values=cache, position_ids=positions, use_cache=True)
            position += 1
        return batch * steps / (time.perf_counter() - began)


def raw_curve(
    model: PreTrainedModel, prompt_ids: Sequence[int], batches: Sequence[int], steps: int, repeats: int
) -> dict[int, float]:
    """{batch size: raw tokens/s} over `batches`, the best of `repeats` runs each: what the
    hardware gives when nothing else takes the cores (on a shared machine, others do)."""
    return {b: max(raw_decode_rate(model, prompt_ids, b, steps) for _ in range(repeats)) for b in batches}


class ForwardMeter:
    """Counts the engine model's forward passes: a call of (B, 1) ids with an attention mask is
    a decode step of B rows (the worker's batched step passes one for its padding), any other
    call a prefill (a fully cached prompt prefills one token, without a mask). Hooks run on the
    engine's thread; `snapshot` on any."""

    def __init__(self, model: nn.Module) -> None:
        self._lock = threading.Lock()
        self._counts = ForwardCounts()
        self._started: dict[int, tuple[float, tuple[int, ...], bool]] = {}
        self._handles: list[RemovableHandle] = [
            model.register_forward_pre_hook(self._before, with_kwargs=True),
            model.register_forward_hook(self._after, with_kwargs=True),
        ]

    def snapshot(self) -> ForwardCounts:
        with self._lock:
            return self._counts

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _before(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else (0, 0)
        is_decode = shape[-1] == 1 and kwargs.get("attention_mask") is not None
        self._started[threading.get_ident()] = (time.perf_counter(), shape, is_decode)

    def _after(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        began, shape, is_decode = self._started.pop(threading.get_ident())
        elapsed = time.perf_counter() - began
        rows, length = shape[0], shape[-1]
        if is_decode:
            step = ForwardCounts(decode_steps=1, decode_rows=rows, decode_s=elapsed)
        else:
            step = ForwardCounts(prefill_calls=1, prefill_tokens=rows * length, prefill_s=elapsed)
        with self._lock:
            self._counts = self._counts + step
