"""The one small interface that every engine backend implements and every search strategy calls.

Search asks for one reasoning step at a time ("continue this prefix k ways, stop at a newline"),
so the contract is about continuing token prefixes: a batch of prefixes, `n` samples each.
Backends are expected to share KV cache between prefixes that share tokens, so extending a node
costs only the node's new tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from engine.turnstile import CoreTurnstile

FinishReason = Literal["stop", "length", "abort"]

COMPUTE_LOCK = CoreTurnstile()
"""Taken by every forward pass on this process's CPU threads: an engine's step and a PRM's
scoring call, each for as many cores as it runs torch threads. Two passes that each spun up
torch's full thread pool on the same cores thrashed them (measured: 20x slower per step), so a
pass on every core runs alone, while passes on one core each share the machine. It is fair (first
come, first served) and an engine holds it for one bounded step at a time, so each model's queue
gets its turn. It lives here, in the torch-free protocol, so search can share it without loading
torch."""

StartCallback = Callable[[float], None]
"""`on_start(started_at)`: called on the event loop as the engine begins a prompt (its prefill),
with the `time.monotonic()` at which it began; a server's queue time ends there."""


class InvalidPromptError(ValueError):
    """The prompt itself is unusable (empty, too long, unknown token ids): the caller's fault."""


GREEDY_TEMPERATURE = 1e-5
"""Temperatures below this sample greedily: dividing logits by a tiny one overflows float32 to inf, and
softmax then gives NaN. vLLM's `_SAMPLING_EPS`, with the same meaning."""


@dataclass(frozen=True)
class SamplingParams:
    """How to continue one prefix. A temperature under `GREEDY_TEMPERATURE` means greedy (argmax)."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k: true temperature sampling
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    # The prefix-cache namespace (vLLM's `cache_salt`): prefixes are reused only between
    # requests with the same salt; None is the shared namespace.
    cache_salt: str | None = None

    @property
    def is_greedy(self) -> bool:
        return self.temperature < GREEDY_TEMPERATURE

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError("max_new_tokens must be >= 0")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.top_logprobs < 0:
            raise ValueError("top_logprobs must be >= 0")


@dataclass(frozen=True)
class TokenLogprob:
    """The model's (temperature-free) log-probability of one sampled token, with alternatives."""

    token_id: int
    token: str
    logprob: float
    top: tuple[tuple[int, str, float], ...] = ()


@dataclass
class Continuation:
    """One finished continuation of one prefix.

    `token_ids` holds every generated token, including the one that completed a stop string
    (so a child node's prefix is exactly parent + token_ids); `text` is cut before the stop
    string unless `include_stop_str_in_output`. An EOS token ends the sequence and is in neither.
    """

    index: int
    token_ids: list[int]
    text: str
    finish_reason: FinishReason
    cumulative_logprob: float = 0.0
    logprobs: list[TokenLogprob] | None = None
    stop_str: str | None = None
    num_prompt_tokens: int = 0
    num_cached_prompt_tokens: int = 0


@dataclass
class StreamDelta:
    """New output of continuation `index` since the previous delta; `finish_reason` is set once."""

    index: int
    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    num_prompt_tokens: int = 0
    num_cached_prompt_tokens: int = 0


@dataclass(frozen=True)
class CacheStats:
    """Prefix-cache counters since start; `live_nodes`, `cached_tokens` and `cache_bytes` are current."""

    prompt_tokens_requested: int = 0
    prompt_tokens_computed: int = 0
    prompt_tokens_reused: int = 0
    evictions: int = 0
    live_nodes: int = 0
    locked_nodes: int = 0
    cached_tokens: int = 0
    cache_bytes: int = 0
    capacity_bytes: int = 0
    generated_tokens: int = 0
    running_sequences: int = 0


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ModelCard:
    """What the server needs to know about a served model."""

    model_id: str
    max_context: int
    kind: Literal["generate", "reward"] = "generate"
    extra: dict[str, str] = field(default_factory=dict)
    # What the model's authors recommend (temperature, top_p, top_k) for fields a request leaves
    # unset, as vLLM does with generation_config.json.
    sampling_defaults: dict[str, float] = field(default_factory=dict)
    # How long the model's replies typically run, in tokens, where known: a search sizes the
    # widths a request leaves unset so that its parallel paths can finish within the budget.
    reply_tokens: int | None = None
    # Which weights answer: the published version's label ("countdown-v3", engine.versions), or
    # "" for an unversioned folder. Responses carry it as `system_fingerprint`.
    version: str = ""


@runtime_checkable
class Engine(Protocol):
    """A generative backend. All methods are safe to call from the server's event loop."""

    @property
    def card(self) -> ModelCard: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        on_start: StartCallback | None = None,
    ) -> list[list[Continuation]]:
        """Continue every prefix `params.n` ways; result[i][j] is sample j of prefix i.

        Cancelling the awaiting task aborts the work and releases its cache references.
        `on_start` is called once per prefix, when the engine begins it.
        """
        ...

    def stream(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_start: StartCallback | None = None
    ) -> AsyncIterator[StreamDelta]:
        """Continue one prefix `params.n` ways, yielding deltas as tokens are produced."""
        ...

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, token_ids: Sequence[int]) -> str: ...

    def apply_chat_template(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of the conversation followed by the assistant's generation prompt."""
        ...

    def cache_stats(self) -> CacheStats: ...


@runtime_checkable
class ReloadsInPlace(Protocol):
    """An engine that takes a new version's weights into itself (vLLM's `reload_weights`) rather
    than needing a second engine beside it."""

    async def successor(self, folder: Path) -> ReloadsInPlace:
        """The next version's engine over the same runtime, once `folder` is found loadable into
        it; it accepts requests and holds them until `take_over` loaded its weights."""
        ...

    async def take_over(self, abort_running: bool) -> None:
        """Load this version's weights (the previous version's requests have finished, or are
        aborted when `abort_running`); on failure the previous weights are back."""
        ...
