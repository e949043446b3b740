"""The hardware's side of the speed bench: the policy's raw batched decode rate, and a meter on
the engine's own forward passes.

The raw rate is the engine's own decode step (`BatchWorker.decode`, the fused step where the
model allows it) with a KV cache at a fixed batch size, nothing else: no scheduler, no sampling
beyond an argmax, no padding, no radix cache. The meter wraps that decode step and hangs torch
forward hooks on the engine's model for the prefills (engine files stay untouched), so a
search's live batch is measured per step, not guessed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from bench.speed_stats import ForwardCounts
from engine.embedded import EmbeddedEngine
from engine.fast_decode import DecodeStep
from engine.growable_cache import growable_cache
from engine.protocol import COMPUTE_LOCK
from engine.worker import BatchWorker

WARMUP_STEPS = 3
"""Decode steps run and discarded before timing: the first calls allocate and pick kernels."""


def engine_worker(engine: EmbeddedEngine) -> BatchWorker:
    """The engine's worker, whose model and decode step are measured (instrumentation reaches in)."""
    worker = engine._worker
    if worker is None:
        raise RuntimeError("start the engine before measuring it")
    return worker


def raw_decode_rate(worker: BatchWorker, prompt_ids: Sequence[int], batch: int, steps: int) -> float:
    """Tokens/s of `steps` greedy decode steps of `batch` copies of `prompt_ids`, after their
    prefill, with the engine's growable KV cache and decode step; holds the compute lock the
    engine takes."""
    model, decode = worker.model, worker.decode
    with COMPUTE_LOCK, torch.inference_mode():
        cache = growable_cache(model.config)
        ids = torch.tensor([list(prompt_ids)] * batch)  # (B, T)
        logits = model(input_ids=ids, past_key_values=cache, use_cache=True).logits[:, -1]
        position = len(prompt_ids)
        began = 0.0
        for step in range(WARMUP_STEPS + steps):
            if step == WARMUP_STEPS:
                began = time.perf_counter()
            next_ids = logits.argmax(dim=-1)  # (B,)
            mask = torch.ones(batch, position + 1, dtype=torch.long)  # no padding: every column
            logits = decode(next_ids, torch.full((batch,), position), cache, mask)
            position += 1
        return batch * steps / (time.perf_counter() - began)


def raw_curve(
    worker: BatchWorker, prompt_ids: Sequence[int], batches: Sequence[int], steps: int, repeats: int
) -> dict[int, float]:
    """{batch size: raw tokens/s} over `batches`, the best of `repeats` runs each: what the
    hardware gives when nothing else takes the cores (on a shared machine, others do)."""
    return {b: max(raw_decode_rate(worker, prompt_ids, b, steps) for _ in range(repeats)) for b in batches}


class ForwardMeter:
    """Counts the engine's decode steps (rows and time, by wrapping the worker's decode step) and
    its model's other forward passes, the prefills (by forward hooks; a decode step that runs
    the model's own forward is left to the wrapper). Both run on the engine's thread;
    `snapshot` on any."""

    def __init__(self, worker: BatchWorker) -> None:
        self._lock = threading.Lock()
        self._counts = ForwardCounts()
        self._started: dict[int, tuple[float, tuple[int, ...], bool]] = {}
        self._worker = worker
        self._decode: DecodeStep = worker.decode
        worker.decode = self._timed_decode
        self._handles: list[RemovableHandle] = [
            worker.model.register_forward_pre_hook(self._before, with_kwargs=True),
            worker.model.register_forward_hook(self._after, with_kwargs=True),
        ]

    def snapshot(self) -> ForwardCounts:
        with self._lock:
            return self._counts

    def close(self) -> None:
        self._worker.decode = self._decode
        for handle in self._handles:
            handle.remove()

    def _timed_decode(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: Any, mask: torch.Tensor
    ) -> torch.Tensor:
        began = time.perf_counter()
        logits = self._decode(ids, positions, cache, mask)
        step = ForwardCounts(decode_steps=1, decode_rows=ids.shape[0], decode_s=time.perf_counter() - began)
        with self._lock:
            self._counts = self._counts + step
        return logits

    def _before(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else (0, 0)
        is_decode = shape[-1] == 1 and kwargs.get("attention_mask") is not None
        self._started[threading.get_ident()] = (time.perf_counter(), shape, is_decode)

    def _after(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        began, shape, is_decode = self._started.pop(threading.get_ident())
        if is_decode:  # counted by `_timed_decode`
            return
        rows, length = shape[0], shape[-1]
        step = ForwardCounts(
            prefill_calls=1, prefill_tokens=rows * length, prefill_s=time.perf_counter() - began
        )
        with self._lock:
            self._counts = self._counts + step
