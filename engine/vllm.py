"""The vLLM engine: vLLM's async engine (`AsyncLLM`) behind the engine protocol.

vLLM brings paged attention, continuous batching and automatic prefix caching: KV blocks of
`options.vllm_block_size` tokens are keyed by a chained hash of their token ids, so a request
whose prefix was computed before (by a finished request or a running sibling) reuses those blocks.
Reuse is block-granular: the tail of a prefix that does not fill a block is recomputed.

Branch scheduling: a search node's children can only hit the node's blocks once the node's
tokens are in the cache. The search expands one step at a time (`search.expand`): a parent's
`generate` call returns before its children are submitted, so its blocks are always cached by
then; the `k` siblings of one call are submitted together and share the parent's blocks.

Scripts that create this engine need an `if __name__ == "__main__":` guard: vLLM starts its
engine core in a separate process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase
from vllm import AsyncEngineArgs  # type: ignore[import-not-found]
from vllm.inputs import TokensPrompt  # type: ignore[import-not-found]
from vllm.v1.engine.async_llm import AsyncLLM  # type: ignore[import-not-found]

from engine.hf_text import EngineNotStartedError, HFTextMixin
from engine.models import (
    chat_template,
    max_context,
    reply_tokens,
    resolve_model_dir,
    sampling_defaults,
    version_label,
)
from engine.options import EngineOptions
from engine.protocol import (
    CacheStats,
    Continuation,
    ModelCard,
    SamplingParams,
    StartCallback,
    StreamDelta,
)
from engine.vllm_params import finish_reason, stop_string, to_vllm_params, token_logprobs
from engine.vllm_reload import WeightsGate, check_reloadable, reload_in_place
from engine.vllm_stats import PrefixCacheCounter
from engine.weights import require_safetensors

GIB = 2**30
CPU_BLOCK_MULTIPLE = 32
"""vLLM 0.32's CPU attention kernel takes only block sizes that are multiples of 32 (16 fails with
"No common block size for 16 (CPU_ATTN: [MultipleOf(32)])"); CUDA backends accept 16."""


def device_block_size(requested: int) -> int:
    """`requested`, rounded up to what the CPU kernel accepts when running on the CPU."""
    if torch.cuda.is_available():
        return requested
    return -(-requested // CPU_BLOCK_MULTIPLE) * CPU_BLOCK_MULTIPLE


class VllmEngine(HFTextMixin):
    def __init__(self, model_id: str, options: EngineOptions, model_dir: Path | None = None) -> None:
        self.model_id = model_id
        self.options = options
        self._model_dir = model_dir
        self._llm: Any = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._card = ModelCard(model_id=model_id, max_context=0)
        self._request_ids = itertools.count()
        self._counter = PrefixCacheCounter()
        self._num_running = 0  # samples submitted and not yet finished or aborted
        self._num_generated = 0
        self._gate = WeightsGate()  # closed only on a successor whose weights are not loaded yet
        self._predecessor: VllmEngine | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def card(self) -> ModelCard:
        return self._card

    async def start(self) -> None:
        if self._llm is not None:
            return
        # Off the event loop: a first resolve of SmolLM2 converts its GGUF (~20 s).
        folder = self._model_dir
        if folder is None:
            folder = await asyncio.to_thread(resolve_model_dir, self.model_id)
        self._model_dir = folder
        require_safetensors(folder)
        native = int(getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", 2048))
        context = max_context(self.model_id, native)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        template = chat_template(self.model_id)
        if template is not None:  # prompts are templated here (encode_chat), never by vLLM
            tokenizer.chat_template = template
        self._tokenizer = tokenizer
        # Building the engine blocks ~30 s while the engine-core process loads the model.
        self._llm = await asyncio.to_thread(self._build, folder, context)
        self._card = ModelCard(
            model_id=self.model_id,
            max_context=context,
            extra={"engine": "vllm"},
            sampling_defaults=sampling_defaults(self.model_id, folder),
            reply_tokens=reply_tokens(self.model_id),
            version=version_label(folder),
        )

    def _build(self, folder: Path, context_len: int) -> Any:
        args = AsyncEngineArgs(
            model=str(folder),
            tokenizer=str(folder),
            load_format="safetensors",  # never a pickle, whatever else the folder holds
            max_model_len=context_len,
            enable_prefix_caching=self.options.enable_prefix_cache,
            block_size=self.block_size(),
            kv_cache_memory_bytes=int(self.options.vllm_kv_cache_gib * GIB),
            max_num_seqs=self.options.max_batch_size,
            # fp32 on the CPU, as the embedded engine, so greedy decoding matches it token for token.
            dtype="auto" if torch.cuda.is_available() else "float32",
            disable_log_stats=False,  # the scheduler's prefix-cache stats feed `cache_stats()`
        )
        return AsyncLLM.from_engine_args(args, stat_loggers=[self._counter.factory])

    async def successor(self, folder: Path) -> VllmEngine:
        """The next version over this engine's own `AsyncLLM` (see engine.vllm_reload)."""
        current = self._model_dir
        if self._llm is None or current is None:
            raise EngineNotStartedError(f"engine for {self.model_id} is not started")
        await asyncio.to_thread(check_reloadable, current, folder)
        nxt = VllmEngine(self.model_id, self.options, folder)
        nxt._llm, nxt._tokenizer, nxt._counter = self._llm, self._tokenizer, self._counter
        nxt._gate, nxt._predecessor = WeightsGate(is_open=False), self
        nxt._card = dataclasses.replace(
            self._card,
            sampling_defaults=sampling_defaults(self.model_id, folder),
            version=version_label(folder),
        )
        return nxt

    async def take_over(self, abort_running: bool) -> None:
        """Pause vLLM's scheduler, reload this version's weights, reset the prefix cache and resume;
        then the predecessor no longer reaches the engine (and its `close` shuts nothing down)."""
        llm, previous = self._require_llm(), self._predecessor
        assert previous is not None and self._model_dir is not None and previous._model_dir is not None
        await llm.pause_generation(mode="abort" if abort_running else "wait", clear_cache=True)
        try:
            await reload_in_place(llm, self._model_dir)
        except Exception as exc:
            self._gate.fail(str(exc))
            await reload_in_place(llm, previous._model_dir)  # the served weights again
            raise
        finally:
            await llm.resume_generation()
        previous._llm, self._predecessor = None, None
        self._gate.open()

    def block_size(self) -> int:
        return device_block_size(self.options.vllm_block_size)

    async def close(self) -> None:
        if self._llm is None or self._predecessor is not None:  # a successor owns it once it took over
            self._llm = None
            return
        llm, self._llm = self._llm, None
        await asyncio.to_thread(llm.shutdown)

    # --- generation --------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        on_start: StartCallback | None = None,
    ) -> list[list[Continuation]]:
        """Submits every prefix at once (siblings decode together); cancelling aborts them all."""
        checked = [self._validated_prompt(p) for p in prompts]
        await self._gate.wait(self.model_id)
        _report_start(on_start, len(checked))
        if params.max_new_tokens == 0:  # vLLM needs max_tokens >= 1; nothing to generate anyway
            return [[_empty(i, len(p)) for i in range(params.n)] for p in checked]
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._generate_one(p, params)) for p in checked]
        return [task.result() for task in tasks]

    async def _generate_one(self, prompt: list[int], params: SamplingParams) -> list[Continuation]:
        final: Any = None
        async for output in self._submit(prompt, params, is_streaming=False):
            final = output
        results = [self._continuation(final, c, params) for c in final.outputs]
        return sorted(results, key=lambda c: c.index)

    async def stream(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_start: StartCallback | None = None
    ) -> AsyncIterator[StreamDelta]:
        prompt = self._validated_prompt(prompt_ids)
        await self._gate.wait(self.model_id)
        _report_start(on_start, 1)
        if params.max_new_tokens == 0:
            for i in range(params.n):
                yield StreamDelta(i, [], "", [] if params.logprobs else None, "length", len(prompt))
            return
        async for output in self._submit(prompt, params, is_streaming=True):
            for c in output.outputs:
                yield self._delta(output, c, params)

    async def _submit(
        self, prompt: list[int], params: SamplingParams, is_streaming: bool
    ) -> AsyncIterator[Any]:
        """vLLM's outputs for one prefix; leaving early (cancel, error) aborts the request."""
        llm = self._require_llm()
        request_id = f"ponder-{next(self._request_ids)}"
        vllm_params = to_vllm_params(params, is_streaming)
        prompt_input = TokensPrompt(prompt_token_ids=prompt)
        if params.cache_salt is not None:  # vLLM's own namespacing of its prefix-cache blocks
            prompt_input["cache_salt"] = params.cache_salt
        unfinished = params.n
        self._num_running += unfinished
        try:
            async for output in llm.generate(prompt_input, vllm_params, request_id):
                done = sum(c.finish_reason is not None for c in output.outputs)
                unfinished -= done
                self._num_running -= done
                yield output
        finally:
            self._num_running -= unfinished
            if unfinished and self._llm is not None:  # vLLM aborts on cancel itself; make sure
                await asyncio.shield(self._llm.abort(request_id))

    def _continuation(self, output: Any, c: Any, params: SamplingParams) -> Continuation:
        logprobs = token_logprobs(c.token_ids, c.logprobs, params.top_logprobs)
        self._num_generated += len(c.token_ids)
        return Continuation(
            index=c.index,
            token_ids=list(c.token_ids),
            text=c.text,
            finish_reason=finish_reason(c.finish_reason) or "abort",
            cumulative_logprob=sum(lp.logprob for lp in logprobs),
            logprobs=logprobs if params.logprobs else None,
            stop_str=stop_string(c.stop_reason),
            num_prompt_tokens=len(output.prompt_token_ids or []),
            num_cached_prompt_tokens=int(output.num_cached_tokens or 0),
        )

    def _delta(self, output: Any, c: Any, params: SamplingParams) -> StreamDelta:
        self._num_generated += len(c.token_ids)
        logprobs = token_logprobs(c.token_ids, c.logprobs, params.top_logprobs)
        return StreamDelta(
            index=c.index,
            token_ids=list(c.token_ids),
            text=c.text,
            logprobs=logprobs if params.logprobs else None,
            finish_reason=finish_reason(c.finish_reason),
            num_prompt_tokens=len(output.prompt_token_ids or []),
            num_cached_prompt_tokens=int(output.num_cached_tokens or 0),
        )

    def cache_stats(self) -> CacheStats:
        """vLLM's prefix-cache counters; it exposes no tree, so node counts stay 0."""
        queries, hits = self._counter.queries, self._counter.hits
        return CacheStats(
            prompt_tokens_requested=queries,
            prompt_tokens_computed=queries - hits,
            prompt_tokens_reused=hits,
            capacity_bytes=int(self.options.vllm_kv_cache_gib * GIB),
            generated_tokens=self._num_generated,
            running_sequences=max(0, self._num_running),
        )

    def _require_llm(self) -> Any:
        if self._llm is None:
            raise EngineNotStartedError(f"engine for {self.model_id} is not started")
        return self._llm


def _report_start(on_start: StartCallback | None, num_prompts: int) -> None:
    """vLLM queues and schedules inside its own engine, out of sight (its metrics export that
    queue): to ponder a prompt begins when it is submitted."""
    if on_start is not None:
        started_at = time.monotonic()
        for _ in range(num_prompts):
            on_start(started_at)


def _empty(index: int, num_prompt_tokens: int) -> Continuation:
    return Continuation(index, [], "", "length", num_prompt_tokens=num_prompt_tokens)


def create_vllm_engine(model_id: str, options: EngineOptions, model_dir: Path | None = None) -> VllmEngine:
    return VllmEngine(model_id, options, model_dir)
