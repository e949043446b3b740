"""What one search may do: the knobs, their server-side limits, and `reasoning_effort` presets.

Validation lives here, as pure functions, so the server can turn any bad or oversized knob into
a 400 naming the parameter without running a search.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from rewards.aggregation import AGGREGATIONS
from rewards.tasks import DEFAULT_TASK, TASKS

DEFAULT_STRATEGY = "beam"

# Knobs that must be >= 1, in the order they are checked.
_POSITIVE_INT_FIELDS = ("budget_tokens", "n", "beam_width", "expansions", "simulations", "max_step_tokens")


@dataclass(frozen=True)
class SearchConfig:
    """One search. `n`: samples (best_of_n, self_consistency) or revisions (revise);
    `beam_width`: beams (beam) or subtrees (dvts); `expansions`: children sampled per expanded
    node; `simulations`: MCTS iterations; `rollout`: MCTS and beam value steps by whole replies;
    `prm`: score steps with the PRM (else the policy's own step probability); `verifier`: use
    the outcome verifier (marks answers, stops early); `task`: how replies split into steps and
    which answers agree (rewards.tasks). The last fields carry the request's OpenAI parameters:
    `top_p`/`top_k` for every sample, `stop` ends every branch, `max_reply_tokens` caps the
    tokens of any one path (so of the answer), `logprobs` (the number of alternatives per token,
    None for none) returns the chosen path's token log-probabilities."""

    strategy: str = DEFAULT_STRATEGY
    budget_tokens: int = 1024
    max_seconds: float = 60.0
    n: int = 8
    beam_width: int = 4
    expansions: int = 4
    simulations: int = 16
    rollout: bool = True
    """MCTS and beam search value a new step by rolling it out to full replies scored by the
    PRM (False: by the PRM's score of the partial path alone)."""
    prm: bool = True
    prm_model: str | None = None
    """Which served PRM scores the steps; None: the one the server pairs with the policy."""
    aggregate: str = "min"
    verifier: bool = False
    trace: bool = False
    temperature: float = 0.8
    seed: int | None = None
    max_step_tokens: int = 48
    task: str = DEFAULT_TASK
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    max_reply_tokens: int | None = None
    logprobs: int | None = None

    def __post_init__(self) -> None:
        for name in _POSITIVE_INT_FIELDS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"aggregate must be one of {sorted(AGGREGATIONS)}, got {self.aggregate!r}")
        if not self.strategy:
            raise ValueError("strategy must be a non-empty name")
        if self.prm_model is not None and not self.prm_model:
            raise ValueError("prm must be true, false or the id of a served PRM, got ''")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(sorted(TASKS))}, got {self.task!r}")
        if self.max_reply_tokens is not None and self.max_reply_tokens < 1:
            raise ValueError(f"max_reply_tokens must be >= 1, got {self.max_reply_tokens}")


@dataclass(frozen=True)
class SearchLimits:
    """Server-side maxima per knob; a request over one is rejected, never silently clipped."""

    budget_tokens: int = 8192
    max_seconds: float = 120.0
    n: int = 32
    beam_width: int = 16
    expansions: int = 8
    simulations: int = 1024  # cheap in themselves: the token budget bounds an MCTS
    max_step_tokens: int = 128

    def check(self, config: SearchConfig) -> None:
        """ValueError naming the first knob of `config` above its limit."""
        for f in fields(self):
            value, limit = getattr(config, f.name), getattr(self, f.name)
            if value > limit:
                raise ValueError(f"{f.name} must be <= {limit}, got {value}")


# reasoning_effort -> the search it stands for (cheap to expensive); the widths are sized to
# the budget when the request is resolved (search.sizing).
REASONING_EFFORT_PRESETS: dict[str, SearchConfig] = {
    "low": SearchConfig(strategy="best_of_n", budget_tokens=512),
    "medium": SearchConfig(strategy="beam", budget_tokens=1536),
    "high": SearchConfig(strategy="beam", budget_tokens=4096),
}


def preset(reasoning_effort: str) -> SearchConfig:
    """The preset for an effort level; ValueError listing the valid levels."""
    if reasoning_effort not in REASONING_EFFORT_PRESETS:
        valid = ", ".join(REASONING_EFFORT_PRESETS)
        raise ValueError(f"reasoning_effort must be one of {valid}, got {reasoning_effort!r}")
    return REASONING_EFFORT_PRESETS[reasoning_effort]


def with_overrides(base: SearchConfig, overrides: dict[str, object]) -> SearchConfig:
    """`base` with some knobs replaced (re-validated by SearchConfig)."""
    return replace(base, **overrides)  # type: ignore[arg-type]
