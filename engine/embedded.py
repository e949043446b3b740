"""The embedded engine: a transformers causal LM on the CPU behind the engine protocol.

The asyncio side only validates, submits and waits; all model work happens on one worker thread
(`engine.worker.BatchWorker`), which batches every live branch of every request together.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from engine.decode_weights import quantization_error
from engine.fast_decode import DecodeStep, FusedDecode, decode_step
from engine.hf_text import EngineNotStartedError, HFTextMixin
from engine.loader_thread import run_on_own_thread
from engine.models import (
    chat_template,
    decode_weights,
    max_context,
    model_threads,
    reply_tokens,
    resolve_model_dir,
    sampling_defaults,
    version_label,
)
from engine.options import EngineOptions
from engine.outputs import OutputProcessor
from engine.protocol import (
    CacheStats,
    Continuation,
    ModelCard,
    SamplingParams,
    StartCallback,
    StreamDelta,
)
from engine.radix_cache import RadixCache
from engine.sequence import EngineEvent, GroupState
from engine.weights import require_safetensors
from engine.worker import BatchWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Loaded:
    folder: Path
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    decode: DecodeStep


class EmbeddedEngine(HFTextMixin):
    def __init__(self, model_id: str, options: EngineOptions, model_dir: Path | None = None) -> None:
        self.model_id = model_id
        self.options = options
        self._model_dir = model_dir
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._worker: BatchWorker | None = None
        self._card = ModelCard(model_id=model_id, max_context=0)
        self._group_ids = itertools.count()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def card(self) -> ModelCard:
        return self._card

    async def start(self) -> None:
        if self._worker is not None:
            return
        # Off the event loop (a first resolve of SmolLM2 converts its GGUF, ~20 s), and on a
        # thread that ends with the load, so no idle OpenMP team outlives it (engine/loader_thread.py).
        loaded = await run_on_own_thread(f"ponder-load-{self.model_id}", self._load)
        folder, model, tokenizer = loaded.folder, loaded.model, loaded.tokenizer
        self._tokenizer = tokenizer
        context = max_context(self.model_id, int(getattr(model.config, "max_position_embeddings", 2048)))
        self._card = ModelCard(
            model_id=self.model_id,
            max_context=context,
            sampling_defaults=sampling_defaults(self.model_id, folder),
            reply_tokens=reply_tokens(self.model_id),
            version=version_label(folder),
        )
        cache = None
        if self.options.enable_prefix_cache:
            cache = RadixCache(self.options.cache_capacity_mb * 2**20)
        outputs = OutputProcessor(tokenizer, _eos_ids(model, tokenizer), context)
        self._worker = BatchWorker(
            model,
            loaded.decode,
            outputs,
            self.options.max_batch_size,
            cache,
            self.options.prefill_chunk_tokens,
            threads=model_threads(self.model_id, self.options.num_threads),
        )
        self._worker.start()

    async def close(self) -> None:
        if self._worker is None:
            return
        self._worker.stop()
        await asyncio.to_thread(self._worker.join, 10.0)
        self._worker = None

    def _load(self) -> _Loaded:
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        folder = self._model_dir or resolve_model_dir(self.model_id)
        require_safetensors(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        template = chat_template(self.model_id)
        if template is not None:
            tokenizer.chat_template = template
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
        model.eval()
        # Built here, not on the worker's or the event loop's thread: re-laying out (and, for
        # int4, quantising) the weights runs parallel torch ops.
        weights = decode_weights(self.model_id)
        with torch.inference_mode():
            decode = decode_step(model, weights)
        if isinstance(decode, FusedDecode) and decode.is_quantised:
            change = quantization_error(decode.projections())
            log.info("%s decodes %s weights: largest weight change %.3g", self.model_id, weights, change)
        return _Loaded(folder, model, tokenizer, decode)

    # --- generation --------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        on_start: StartCallback | None = None,
    ) -> list[list[Continuation]]:
        groups = [self._submit(p, params, False, on_start) for p in prompts]
        results: list[list[Continuation]] = []
        try:
            for group, queue in groups:
                results.append(await self._collect(group, queue, params.n))
            return results
        finally:
            for group, _ in groups[len(results) :]:  # cancelled or failed: free what is left
                self._abort(group)

    async def stream(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_start: StartCallback | None = None
    ) -> AsyncIterator[StreamDelta]:
        group, queue = self._submit(prompt_ids, params, True, on_start)
        remaining = params.n
        try:
            while remaining:
                event = await queue.get()
                if event.error is not None:
                    raise event.error
                if event.delta is not None:
                    remaining -= event.delta.finish_reason is not None
                    yield event.delta
        finally:
            if remaining:
                self._abort(group)

    async def _collect(
        self, group: GroupState, queue: asyncio.Queue[EngineEvent], n: int
    ) -> list[Continuation]:
        results: list[Continuation] = []
        while len(results) < n:
            event = await queue.get()
            if event.error is not None:
                raise event.error
            if event.result is not None:
                results.append(event.result)
        return sorted(results, key=lambda c: c.index)

    def _submit(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        is_streaming: bool,
        on_start: StartCallback | None,
    ) -> tuple[GroupState, asyncio.Queue[EngineEvent]]:
        worker = self._require_worker()
        prompt = self._validated_prompt(prompt_ids)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()

        def deliver(event: EngineEvent) -> None:
            try:
                if event.started_at is None:
                    loop.call_soon_threadsafe(queue.put_nowait, event)
                elif on_start is not None:
                    loop.call_soon_threadsafe(on_start, event.started_at)
            except RuntimeError:  # the loop is gone: nobody is waiting any more
                pass

        group = GroupState(next(self._group_ids), prompt, params, is_streaming, deliver)
        group.num_unfinished = params.n
        worker.submit(group)
        return group, queue

    def _abort(self, group: GroupState) -> None:
        if self._worker is not None:
            self._worker.abort(group)

    def cache_stats(self) -> CacheStats:
        return self._worker.stats if self._worker is not None else CacheStats()

    def _require_worker(self) -> BatchWorker:
        if self._worker is None:
            raise EngineNotStartedError(f"engine for {self.model_id} is not started")
        return self._worker


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(t) for t in configured)
    return frozenset(ids)


def create_embedded_engine(
    model_id: str, options: EngineOptions, model_dir: Path | None = None
) -> EmbeddedEngine:
    return EmbeddedEngine(model_id, options, model_dir)
