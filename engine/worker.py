"""The embedded engine's scheduler: one thread that owns the model, the batch and the radix cache.

Each loop iteration admits waiting groups (prefilling only what the radix cache lacks), then runs
one decode step for every live sequence of every request in a single forward pass (continuous
batching). Finished sequences leave the batch and their KV goes into the radix cache, so a
later request that extends them (the next reasoning step of a search) computes only new tokens.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from engine.growable_cache import cache_kv
from engine.kv_batch import PaddedKVBatch
from engine.protocol import COMPUTE_LOCK, CacheStats, FinishReason, TokenLogprob
from engine.radix_cache import SHARED_NAMESPACE, RadixCache
from engine.sampling import Sampled, make_generator, sample_rows
from engine.sequence import EngineEvent, GroupState, SequenceState, find_stop, streamable_length

log = logging.getLogger(__name__)


@dataclass
class _Counters:
    prompt_tokens_requested: int = 0
    prompt_tokens_computed: int = 0
    prompt_tokens_reused: int = 0
    generated_tokens: int = 0


class BatchWorker(threading.Thread):
    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        eos_token_ids: frozenset[int],
        max_context: int,
        max_batch_size: int,
        cache: RadixCache | None,
    ) -> None:
        super().__init__(name="ponder-engine", daemon=True)
        self.model = model
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.max_context = max_context
        self.max_batch_size = max_batch_size
        self.cache = cache
        self.inbox: queue.Queue[tuple[str, object]] = queue.Queue()
        self.pending: deque[GroupState] = deque()
        self.running: list[SequenceState] = []
        self.batch = PaddedKVBatch(model.config)
        self.counters = _Counters()
        self.stats = CacheStats(capacity_bytes=cache.capacity_bytes if cache else 0)
        self._stopping = False
        # Events go out at the end of an iteration, after the stats are published, so a caller
        # that receives its result already sees its references released in `stats`.
        self._outbox: list[tuple[GroupState, EngineEvent]] = []

    # --- called from other threads -------------------------------------------------------

    def submit(self, group: GroupState) -> None:
        self.inbox.put(("add", group))

    def abort(self, group: GroupState) -> None:
        self.inbox.put(("abort", group))

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        with torch.inference_mode():
            while not self._stopping:
                self._drain_inbox(block=not self.running and not self.pending)
                with COMPUTE_LOCK:
                    self._admit()
                    if self.running:
                        self._step_safely()
                self._publish_stats()
                self._flush()
        self._fail_all(RuntimeError("engine stopped"))
        self._flush()

    def _drain_inbox(self, block: bool) -> None:
        try:
            item = self.inbox.get(timeout=0.5) if block else self.inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(*item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, kind: str, payload: object) -> None:
        if kind == "stop":
            self._stopping = True
        elif kind == "add":
            assert isinstance(payload, GroupState)
            self.pending.append(payload)
        elif kind == "abort":
            assert isinstance(payload, GroupState)
            self._abort(payload)

    def _abort(self, group: GroupState) -> None:
        group.is_aborted = True
        if group in self.pending:
            self.pending.remove(group)
            return
        for seq in self.running:
            if seq.group is group and seq.finish_reason is None:
                seq.finish_reason = "abort"
        self._retire_finished()

    def _admit(self) -> None:
        while self.pending:
            group = self.pending[0]
            fits = len(self.running) + group.params.n <= self.max_batch_size
            if self.running and not fits:
                return
            self.pending.popleft()
            # Now, not with the iteration's other events: a prefill may take long, and the
            # server's queue timeout must not count it.
            group.deliver(EngineEvent(started_at=time.monotonic()))
            try:
                self._prefill(group)
            except Exception as exc:  # one bad request must not take the engine down
                log.exception("prefill failed")
                self._release_group(group)
                self._emit(group, EngineEvent(error=exc))
        self._retire_finished()

    def _step_safely(self) -> None:
        try:
            self._decode_step()
        except Exception as exc:
            log.exception("decode step failed")
            self._fail_all(exc)

    # --- prefill -----------------------------------------------------------------------------

    def _prefill(self, group: GroupState) -> None:
        prompt = group.prompt_ids
        prefix_kv, cached = None, 0
        if self.cache is not None:
            # Always compute the last prompt token: its logits choose the first new token.
            match = self.cache.match_prefix(prompt[:-1], _namespace(group))
            self.cache.lock(match.node)
            group.node, cached = match.node, match.num_tokens
            prefix_kv = self.cache.gather_kv(match.node)
        group.num_cached = cached
        logits, kv = self._forward_prompt(prompt, cached, prefix_kv)
        self.counters.prompt_tokens_requested += len(prompt)
        self.counters.prompt_tokens_computed += len(prompt) - cached
        self.counters.prompt_tokens_reused += cached
        if self.cache is not None and group.node is not None:
            node = self.cache.insert(prompt, kv, _namespace(group))
            self.cache.lock(node)
            self.cache.unlock(group.node)
            group.node = node
            self.cache.evict_to_capacity()
        self._start_sequences(group, logits, kv)

    def _forward_prompt(
        self, prompt: list[int], cached: int, prefix_kv: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits after the prompt (V,) and the KV of the whole prompt (L, 2, H, T, D)."""
        past = DynamicCache(config=self.model.config)
        if prefix_kv is not None:
            for i in range(prefix_kv.shape[0]):
                past.update(prefix_kv[i, 0].unsqueeze(0), prefix_kv[i, 1].unsqueeze(0), i)
        ids = torch.tensor([prompt[cached:]])
        positions = torch.arange(cached, len(prompt)).unsqueeze(0)
        out = self.model(input_ids=ids, past_key_values=past, position_ids=positions, use_cache=True)
        return out.logits[0, -1], cache_kv(past)

    def _start_sequences(self, group: GroupState, logits: torch.Tensor, kv: torch.Tensor) -> None:
        params = group.params
        seqs = [
            SequenceState(group, i, list(group.prompt_ids), make_generator(params, i))
            for i in range(params.n)
        ]
        group.num_unfinished = len(seqs)
        if params.max_new_tokens == 0:  # nothing to decode: never enters the batch
            for seq in seqs:
                self._finish(seq, "length")
            group.num_unfinished = 0
            self._release_group(group)
            return
        self.batch.add_rows([kv] * len(seqs))
        self.running.extend(seqs)
        rows = logits.unsqueeze(0).expand(len(seqs), -1)
        for seq, sampled in zip(seqs, self._sample(rows, seqs), strict=True):
            self._append(seq, sampled)

    # --- decode ------------------------------------------------------------------------------

    def _decode_step(self) -> None:
        ids = torch.tensor([[seq.token_ids[-1]] for seq in self.running])
        positions = torch.tensor([[len(seq.token_ids) - 1] for seq in self.running])
        mask = self.batch.attention_mask(extra=1)
        out = self.model(
            input_ids=ids,
            past_key_values=self.batch.cache,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
        )
        self.batch.grow()
        for seq, sampled in zip(self.running, self._sample(out.logits[:, -1], self.running), strict=True):
            self._append(seq, sampled)
        self._retire_finished()

    def _sample(self, logits: torch.Tensor, seqs: list[SequenceState]) -> list[Sampled]:
        gens = [seq.generator for seq in seqs]
        return sample_rows(logits, [s.group.params for s in seqs], gens)  # type: ignore[arg-type]

    def _append(self, seq: SequenceState, sampled: Sampled) -> None:
        params = seq.group.params
        if sampled.token_id in self.eos_token_ids and not params.ignore_eos:
            self._finish(seq, "stop")
            return
        seq.token_ids.append(sampled.token_id)
        self.counters.generated_tokens += 1
        seq.cumulative_logprob += sampled.logprob
        if params.logprobs:
            seq.logprobs.append(self._token_logprob(sampled))
        previous_len = len(seq.text)
        seq.text = str(self.tokenizer.decode(seq.generated, skip_special_tokens=True))
        longest_stop = max((len(s) for s in params.stop), default=0)
        hit = find_stop(seq.text, params.stop, max(0, previous_len - longest_stop + 1))
        if hit is not None:
            pos, stop = hit
            seq.text = seq.text[: pos + len(stop)] if params.include_stop_str_in_output else seq.text[:pos]
            seq.stop_str = stop
            self._finish(seq, "stop")
        elif len(seq.generated) >= params.max_new_tokens or len(seq.token_ids) >= self.max_context:
            self._finish(seq, "length")
        elif seq.group.is_streaming:
            ready = streamable_length(seq.text, params.stop)
            if ready > seq.num_emitted_chars:
                self._emit(seq.group, EngineEvent(delta=seq.take_delta(ready)))

    def _token_logprob(self, sampled: Sampled) -> TokenLogprob:
        def piece(token_id: int) -> str:
            return str(self.tokenizer.decode([token_id]))

        top = tuple((tid, piece(tid), lp) for tid, lp in sampled.top)
        return TokenLogprob(sampled.token_id, piece(sampled.token_id), sampled.logprob, top)

    def _finish(self, seq: SequenceState, reason: FinishReason) -> None:
        seq.finish_reason = reason
        group = seq.group
        if group.is_streaming:
            self._emit(group, EngineEvent(delta=seq.take_delta(len(seq.text))))
        self._emit(group, EngineEvent(result=seq.to_continuation()))

    def _emit(self, group: GroupState, event: EngineEvent) -> None:
        self._outbox.append((group, event))

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        for group, event in outbox:
            if not group.is_aborted:
                group.deliver(event)

    # --- leaving the batch -------------------------------------------------------------------

    def _retire_finished(self) -> None:
        keep: list[int] = []
        for row, seq in enumerate(self.running):
            if seq.finish_reason is None:
                keep.append(row)
                continue
            if self.cache is not None and seq.finish_reason != "abort":
                length = self.batch.lengths[row]
                self.cache.insert(seq.token_ids[:length], self.batch.row_kv(row), _namespace(seq.group))
            seq.group.num_unfinished -= 1
            if seq.group.num_unfinished == 0:
                self._release_group(seq.group)
        if len(keep) != len(self.running):
            self.batch.keep_rows(keep)
            self.running = [self.running[r] for r in keep]
            if self.cache is not None:
                self.cache.evict_to_capacity()

    def _release_group(self, group: GroupState) -> None:
        if self.cache is not None and group.node is not None:
            self.cache.unlock(group.node)
        group.node = None

    def _fail_all(self, exc: BaseException) -> None:
        groups = {id(s.group): s.group for s in self.running} | {id(g): g for g in self.pending}
        self.running, self.pending = [], deque()
        self.batch = PaddedKVBatch(self.model.config)
        for group in groups.values():
            self._release_group(group)
            self._emit(group, EngineEvent(error=exc))

    def _publish_stats(self) -> None:
        c, cache = self.counters, self.cache
        self.stats = CacheStats(
            prompt_tokens_requested=c.prompt_tokens_requested,
            prompt_tokens_computed=c.prompt_tokens_computed,
            prompt_tokens_reused=c.prompt_tokens_reused,
            evictions=cache.num_evictions if cache else 0,
            live_nodes=cache.num_nodes if cache else 0,
            locked_nodes=cache.num_locked if cache else 0,
            cached_tokens=cache.num_tokens if cache else 0,
            cache_bytes=cache.num_bytes if cache else 0,
            capacity_bytes=cache.capacity_bytes if cache else 0,
            generated_tokens=c.generated_tokens,
            running_sequences=len(self.running),
        )


def _namespace(group: GroupState) -> str:
    return group.params.cache_salt or SHARED_NAMESPACE
