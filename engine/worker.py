"""The embedded engine's scheduler: one thread that owns the model, the batch and the radix cache.

Each loop iteration is one engine step, taken as one turn at the process's fair compute lock: it
admits waiting groups (matching the radix cache, so only what it lacks is prefilled), spends one
chunk's worth of prefill (`engine.prefill`, round-robin over the prompts being prefilled), then
runs one decode step for every live sequence of every request (continuous batching). A long
prompt thus costs a chunk per step, never a whole prompt, and short requests of this model and of
the others proceed between its chunks. Finished sequences leave the batch and their KV goes into
the radix cache, so a later request that extends them (the next reasoning step of a search)
computes only new tokens.

Live sequences are decoded in lanes (`engine.lanes`): one left-padded batch per band of context
length, one forward pass per lane. In one padded batch every row costs the longest row's width,
so a single 8k-token prompt among sixteen 40-token chats made each of their decode steps (and
each admission, which re-pads the batch) as dear as sixteen 8k-token rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import partial

import torch
from transformers import PreTrainedModel

from engine.fast_decode import DecodeStep
from engine.lanes import Lane, Lanes
from engine.options import PREFILL_CHUNK_TOKENS
from engine.outputs import OutputProcessor
from engine.prefill import PrefillJob, advance, prefill_step, start_prefill
from engine.protocol import COMPUTE_LOCK, CacheStats
from engine.radix_cache import SHARED_NAMESPACE, RadixCache
from engine.sampling import Sampled, make_generator, sample_rows
from engine.sequence import EngineEvent, GroupState, SequenceState

log = logging.getLogger(__name__)


@dataclass
class _Counters:
    prompt_tokens_requested: int = 0
    prompt_tokens_computed: int = 0
    prompt_tokens_reused: int = 0


class BatchWorker(threading.Thread):
    def __init__(
        self,
        model: PreTrainedModel,
        decode: DecodeStep,
        outputs: OutputProcessor,
        max_batch_size: int,
        cache: RadixCache | None,
        prefill_chunk_tokens: int = PREFILL_CHUNK_TOKENS,
        threads: int | None = None,
    ) -> None:
        super().__init__(name="ponder-engine", daemon=True)
        self.threads = threads  # torch threads of this model's passes, and the cores it asks for
        # Unset: the count of the thread that builds the worker (torch's default, or the
        # process-wide count a caller set). Read here, not in `run`: a new thread starts from
        # whatever count another model's worker set last.
        self.torch_threads = threads or torch.get_num_threads()
        self.model = model
        self.decode = decode  # built on the loading thread (engine/loader_thread.py)
        self.prefill = prefill_step(model, decode)
        self.outputs = outputs
        self.max_batch_size = max_batch_size
        self.cache = cache
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.inbox: queue.Queue[tuple[str, object]] = queue.Queue()
        self.pending: deque[GroupState] = deque()
        self.prefilling: deque[PrefillJob] = deque()  # admitted; the head gets the next chunk
        self.lanes = Lanes(model.config)
        self.counters = _Counters()
        self.stats = CacheStats(capacity_bytes=cache.capacity_bytes if cache else 0)
        self._stopping = False

    # --- called from other threads -------------------------------------------------------

    def submit(self, group: GroupState) -> None:
        self.inbox.put(("add", group))

    def abort(self, group: GroupState) -> None:
        self.inbox.put(("abort", group))

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    @property
    def running(self) -> list[SequenceState]:
        """Every live sequence, lane by lane."""
        return self.lanes.sequences()

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        torch.set_num_threads(self.torch_threads)  # this thread's own pool: other models keep theirs
        with torch.inference_mode():
            while not self._stopping:
                self._drain_inbox(block=not self.lanes and not self.pending and not self.prefilling)
                # one turn per step: the other models' steps come in between, or beside it on
                # cores it leaves free
                with COMPUTE_LOCK.cores(self.threads):
                    self._admit()
                    self._prefill_step()
                    if self.lanes:
                        self._step_safely()
                self._publish_stats()
                self.outputs.flush()
        self._fail_all(RuntimeError("engine stopped"))
        self.outputs.flush()

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
        for job in self.prefilling:
            if job.group is group:
                self.prefilling.remove(job)
                self._release_group(group)
                return
        for seq in self.running:
            if seq.group is group and seq.finish_reason is None:
                seq.finish_reason = "abort"
        self._retire_finished()

    def _admit(self) -> None:
        """Start the prefill of every waiting group the batch has room for, in arrival order."""
        while self.pending:
            group = self.pending[0]
            num_admitted = len(self.lanes) + sum(j.group.params.n for j in self.prefilling)
            if num_admitted and num_admitted + group.params.n > self.max_batch_size:
                return
            self.pending.popleft()
            # Now, not with the step's other events: a prefill may take many steps, and the
            # server's queue timeout must not count them.
            group.deliver(EngineEvent(started_at=time.monotonic()))
            try:
                self.prefilling.append(self._start_prefill(group))
            except Exception as exc:  # one bad request must not take the engine down
                self._fail_group(group, exc)

    def _step_safely(self) -> None:
        try:
            self._decode_step()
        except Exception as exc:
            log.exception("decode step failed")
            self._fail_all(exc)

    # --- prefill ---------------------------------------------------------------------------

    def _start_prefill(self, group: GroupState) -> PrefillJob:
        prompt = group.prompt_ids
        prefix_kv, cached = None, 0
        if self.cache is not None:
            # Always compute the last prompt token: its logits choose the first new token.
            match = self.cache.match_prefix(prompt[:-1], _namespace(group))
            self.cache.lock(match.node)
            group.node, cached = match.node, match.num_tokens
            prefix_kv = self.cache.gather_kv(match.node)
        group.num_cached = cached
        return start_prefill(group, self.model.config, prefix_kv, cached)

    def _prefill_step(self) -> None:
        """Prefill up to one chunk of prompt tokens, round-robin: a prompt left unfinished goes
        to the back, so a short prompt admitted behind a long one is prefilled in the next step."""
        budget = self.prefill_chunk_tokens
        while budget > 0 and self.prefilling:
            job = self.prefilling.popleft()
            try:
                budget -= advance(self.prefill, self.decode, job, budget)
                if not job.is_done:
                    self.prefilling.append(job)
                    continue
                self._finish_prefill(job)
            except Exception as exc:
                self._fail_group(job.group, exc)
        self._retire_finished()

    def _finish_prefill(self, job: PrefillJob) -> None:
        """Count the prompt, cache its KV (as one node, as an unchunked prefill would) and start
        its sequences from the last token's logits."""
        group, prompt, kv = job.group, job.group.prompt_ids, job.kv()
        assert job.logits is not None
        self.counters.prompt_tokens_requested += len(prompt)
        self.counters.prompt_tokens_computed += len(prompt) - job.num_cached
        self.counters.prompt_tokens_reused += job.num_cached
        if self.cache is not None and group.node is not None:
            node = self.cache.insert(prompt, kv, _namespace(group))
            self.cache.lock(node)
            self.cache.unlock(group.node)
            group.node = node
            self.cache.evict_to_capacity()
        self._start_sequences(group, job.logits, kv)

    def _fail_group(self, group: GroupState, exc: Exception) -> None:
        log.exception("prefill failed")
        self._release_group(group)
        self.outputs.emit(group, EngineEvent(error=exc))

    def _start_sequences(self, group: GroupState, logits: torch.Tensor, kv: torch.Tensor) -> None:
        params = group.params
        seqs = [
            SequenceState(group, i, list(group.prompt_ids), make_generator(params, i))
            for i in range(params.n)
        ]
        group.num_unfinished = len(seqs)
        if params.max_new_tokens == 0:  # nothing to decode: never enters the batch
            for seq in seqs:
                self.outputs.finish(seq, "length")
            group.num_unfinished = 0
            self._release_group(group)
            return
        self.lanes.add(seqs, kv)
        rows = logits.unsqueeze(0).expand(len(seqs), -1)
        for seq, sampled in zip(seqs, self._sample(rows, seqs), strict=True):
            self.outputs.append(seq, sampled)

    # --- decode ------------------------------------------------------------------------------

    def _decode_step(self) -> None:
        for lane in self.lanes.live():
            self._decode_lane(lane)
        self._retire_finished()

    def _decode_lane(self, lane: Lane) -> None:
        ids = torch.tensor([seq.token_ids[-1] for seq in lane.running])
        positions = torch.tensor([len(seq.token_ids) - 1 for seq in lane.running])
        assert lane.batch.cache is not None
        logits = self.decode(ids, positions, lane.batch.cache, lane.batch.attention_mask(extra=1))
        lane.batch.grow()
        for seq, sampled in zip(lane.running, self._sample(logits, lane.running), strict=True):
            self.outputs.append(seq, sampled)

    def _sample(self, logits: torch.Tensor, seqs: list[SequenceState]) -> list[Sampled]:
        gens = [seq.generator for seq in seqs]
        return sample_rows(logits, [s.group.params for s in seqs], gens)  # type: ignore[arg-type]

    # --- leaving the batch -------------------------------------------------------------------

    def _retire_finished(self) -> None:
        for lane in self.lanes.live():
            self._retire_from(lane)
        self.lanes.drop_empty()

    def _retire_from(self, lane: Lane) -> None:
        keep: list[int] = []
        for row, seq in enumerate(lane.running):
            if seq.finish_reason is None:
                keep.append(row)
                continue
            if self.cache is not None and seq.finish_reason != "abort":
                tokens = seq.token_ids[: lane.batch.lengths[row]]
                kv_after = partial(lane.batch.row_kv, row)  # (first_token): only what is new
                self.cache.insert_new(tokens, kv_after, _namespace(seq.group))
            seq.group.num_unfinished -= 1
            if seq.group.num_unfinished == 0:
                self._release_group(seq.group)
        if len(keep) != len(lane.running):
            lane.keep(keep)
            if self.cache is not None:
                self.cache.evict_to_capacity()

    def _release_group(self, group: GroupState) -> None:
        if self.cache is not None and group.node is not None:
            self.cache.unlock(group.node)
        group.node = None

    def _fail_all(self, exc: BaseException) -> None:
        groups = {id(s.group): s.group for s in self.running} | {id(g): g for g in self.pending}
        groups |= {id(job.group): job.group for job in self.prefilling}
        self.pending, self.prefilling = deque(), deque()
        self.lanes = Lanes(self.model.config)
        for group in groups.values():
            self._release_group(group)
            self.outputs.emit(group, EngineEvent(error=exc))

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
            generated_tokens=self.outputs.num_generated_tokens,
            running_sequences=len(self.lanes),
        )


def _namespace(group: GroupState) -> str:
    return group.params.cache_salt or SHARED_NAMESPACE
