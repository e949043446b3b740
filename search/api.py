"""The request side of search: the `"search": {...}` body field and its resolution to a config.

`resolve_search` is pure: the server calls it before admitting a request and maps its
ValueError (which always names the offending parameter) to a 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from search.config import SearchConfig, SearchLimits, preset, with_overrides
from search.registry import get_strategy
from search.sizing import DEFAULT_REPLY_TOKENS, widths_for_budget


class SearchRequest(BaseModel):
    """Every knob is optional: unset widths are sized to the budget; the rest come from the
    reasoning_effort preset or the defaults."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None
    budget_tokens: int | None = Field(default=None, ge=1)
    max_seconds: float | None = Field(default=None, gt=0)
    n: int | None = Field(default=None, ge=1)
    beam_width: int | None = Field(default=None, ge=1)
    expansions: int | None = Field(default=None, ge=1)
    simulations: int | None = Field(default=None, ge=1)
    rollout: bool | None = None
    prm: bool | str | None = None
    """true/false: steps scored by the policy's PRM or by its own step probability; a string
    names the served PRM to use."""
    aggregate: str | None = None
    verifier: bool | None = None
    trace: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    max_step_tokens: int | None = Field(default=None, ge=1)


def parse_search_request(search: dict[str, object]) -> SearchRequest:
    """Pydantic validation, re-raised as a ValueError whose message starts with `search.<param>`."""
    try:
        return SearchRequest.model_validate(search)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"search.{param}: {error['msg']}") from None


@dataclass(frozen=True)
class ModelDefaults:
    """What the served models recommend for the knobs a request leaves unset. How hot a policy
    should sample to explore, how long its replies run and how a PRM's step scores combine best
    are properties of the models (the bundled Countdown policy solves most at 0.3 and far less
    at 0.8), not of the search."""

    temperature: float | None = None  # the request's own temperature, else the policy's
    reply_tokens: int | None = None  # the policy's typical reply length: sizes unset widths
    aggregate: str | None = None  # the PRM's best step aggregation, measured on a tuning split


def resolve_search(
    search: dict[str, object] | None,
    reasoning_effort: str | None,
    limits: SearchLimits,
    defaults: ModelDefaults = ModelDefaults(),
) -> SearchConfig | None:
    """The search a request asks for, or None for plain generation; ValueError naming a bad knob."""
    if search is None and reasoning_effort is None:
        return None
    base = preset(reasoning_effort) if reasoning_effort is not None else SearchConfig()
    recommended = {"temperature": defaults.temperature, "aggregate": defaults.aggregate}
    base = with_overrides(base, {k: v for k, v in recommended.items() if v is not None})
    request = parse_search_request(search or {})
    overrides = request.model_dump(exclude_none=True)
    if isinstance(overrides.get("prm"), str):
        overrides["prm_model"] = overrides["prm"]
        overrides["prm"] = True
    try:
        config = with_overrides(base, overrides)
        get_strategy(config.strategy)
        reply = defaults.reply_tokens or DEFAULT_REPLY_TOKENS
        widths = widths_for_budget(config.strategy, config.budget_tokens, reply, limits, overrides)
        config = with_overrides(config, dict(widths))
        limits.check(config)
    except ValueError as exc:
        raise ValueError(f"search.{exc}") from None
    return config
