"""Per-request and per-sample state inside the embedded engine, and stop-string handling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.protocol import Continuation, FinishReason, SamplingParams, StreamDelta, TokenLogprob
from engine.radix_cache import RadixNode


@dataclass
class EngineEvent:
    """What the worker thread hands to the waiting coroutine: a delta, a result or an error, or
    the `time.monotonic()` at which it began the group (its prefill)."""

    delta: StreamDelta | None = None
    result: Continuation | None = None
    error: BaseException | None = None
    started_at: float | None = None


@dataclass(eq=False)
class GroupState:
    """One prefix continued `params.n` ways."""

    group_id: int
    prompt_ids: list[int]
    params: SamplingParams
    is_streaming: bool
    deliver: Callable[[EngineEvent], None]
    node: RadixNode | None = None  # the locked cache node ending at the prompt
    num_cached: int = 0
    num_unfinished: int = 0
    is_aborted: bool = False


@dataclass(eq=False)
class SequenceState:
    group: GroupState
    index: int
    token_ids: list[int]  # prompt + generated; the last one is not yet in the KV cache
    generator: object = None  # torch.Generator | None, kept opaque here
    logprobs: list[TokenLogprob] = field(default_factory=list)
    cumulative_logprob: float = 0.0
    text: str = ""
    num_emitted_chars: int = 0
    num_emitted_tokens: int = 0
    finish_reason: FinishReason | None = None
    stop_str: str | None = None

    @property
    def generated(self) -> list[int]:
        return self.token_ids[len(self.group.prompt_ids) :]

    def take_delta(self, text_ready: int) -> StreamDelta:
        """The tokens and text produced since the last delta, up to `text_ready` chars of text."""
        new_tokens = self.generated[self.num_emitted_tokens :]
        new_logprobs = self.logprobs[self.num_emitted_tokens :] if self.group.params.logprobs else None
        delta = StreamDelta(
            index=self.index,
            token_ids=new_tokens,
            text=self.text[self.num_emitted_chars : text_ready],
            logprobs=new_logprobs,
            finish_reason=self.finish_reason,
            num_prompt_tokens=len(self.group.prompt_ids),
            num_cached_prompt_tokens=self.group.num_cached,
        )
        self.num_emitted_tokens += len(new_tokens)
        self.num_emitted_chars = max(self.num_emitted_chars, text_ready)
        return delta

    def to_continuation(self) -> Continuation:
        assert self.finish_reason is not None
        return Continuation(
            index=self.index,
            token_ids=self.generated,
            text=self.text,
            finish_reason=self.finish_reason,
            cumulative_logprob=self.cumulative_logprob,
            logprobs=list(self.logprobs) if self.group.params.logprobs else None,
            stop_str=self.stop_str,
            num_prompt_tokens=len(self.group.prompt_ids),
            num_cached_prompt_tokens=self.group.num_cached,
        )


def find_stop(text: str, stops: tuple[str, ...], start: int) -> tuple[int, str] | None:
    """Earliest stop string in text[start:], as (position, stop string)."""
    best: tuple[int, str] | None = None
    for stop in stops:
        pos = text.find(stop, start)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, stop)
    return best


def streamable_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of `text` is safe to stream: hold back a tail that may still grow into a stop
    string, and an incomplete multi-byte character (decoded as U+FFFD)."""
    end = len(text)
    while end > 0 and text[end - 1] == "\ufffd":
        end -= 1
    held = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, end), held, -1):
            if text[end - k : end] == stop[:k]:
                held = k
                break
    return end - held
