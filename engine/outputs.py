"""What the embedded engine's worker does with each sampled token: extend the sequence, detect
EOS, stop strings and length limits, and queue the events (stream deltas, results, errors) that
the waiting callers receive.

Events wait in an outbox until the worker flushes it at the end of its step, after it has
published its stats, so a caller that receives its result already sees its cache references
released in `stats`.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from engine.protocol import FinishReason, TokenLogprob
from engine.sampling import Sampled
from engine.sequence import EngineEvent, GroupState, SequenceState, find_stop, streamable_length


class OutputProcessor:
    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, eos_token_ids: frozenset[int], max_context: int
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.max_context = max_context
        self.num_generated_tokens = 0
        self._outbox: list[tuple[GroupState, EngineEvent]] = []

    def append(self, seq: SequenceState, sampled: Sampled) -> None:
        """Add one sampled token to `seq`, finishing it on EOS, a stop string or a length limit."""
        params = seq.group.params
        if sampled.token_id in self.eos_token_ids and not params.ignore_eos:
            self.finish(seq, "stop")
            return
        seq.token_ids.append(sampled.token_id)
        self.num_generated_tokens += 1
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
            self.finish(seq, "stop")
        elif len(seq.generated) >= params.max_new_tokens or len(seq.token_ids) >= self.max_context:
            self.finish(seq, "length")
        elif seq.group.is_streaming:
            ready = streamable_length(seq.text, params.stop)
            if ready > seq.num_emitted_chars:
                self.emit(seq.group, EngineEvent(delta=seq.take_delta(ready)))

    def _token_logprob(self, sampled: Sampled) -> TokenLogprob:
        def piece(token_id: int) -> str:
            return str(self.tokenizer.decode([token_id]))

        top = tuple((tid, piece(tid), lp) for tid, lp in sampled.top)
        return TokenLogprob(sampled.token_id, piece(sampled.token_id), sampled.logprob, top)

    def finish(self, seq: SequenceState, reason: FinishReason) -> None:
        seq.finish_reason = reason
        group = seq.group
        if group.is_streaming:
            self.emit(group, EngineEvent(delta=seq.take_delta(len(seq.text))))
        self.emit(group, EngineEvent(result=seq.to_continuation()))

    def emit(self, group: GroupState, event: EngineEvent) -> None:
        self._outbox.append((group, event))

    def flush(self) -> None:
        """Deliver the queued events, dropping those of groups aborted meanwhile."""
        outbox, self._outbox = self._outbox, []
        for group, event in outbox:
            if not group.is_aborted:
                group.deliver(event)
