"""The request side of search: the `"search": {...}` body field and its resolution to a config.

`resolve_search` is pure: the server calls it before admitting a request and maps its
ValueError (which always names the offending parameter) to a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewards.tasks import TASKS
from search.config import SearchConfig, SearchLimits, preset, with_overrides
from search.registry import get_strategy
from search.sizing import DEFAULT_REPLY_TOKENS, widths_for_budget


class SearchRequest(BaseModel):
    """ponder's `search` field: think before answering. Every knob is optional: unset widths are
    sized to the budget; the rest come from the `reasoning_effort` preset, the model's
    recommendations or the defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)  # JSON's own types, as the schema says

    strategy: str | None = Field(
        default=None,
        description="greedy, best_of_n, self_consistency, beam, dvts, mcts or revise (default beam).",
    )
    budget_tokens: int | None = Field(
        default=None, ge=1, description="Tokens generated over all branches, at most."
    )
    max_seconds: float | None = Field(default=None, gt=0, description="Wall-clock limit of the search.")
    n: int | None = Field(
        default=None, ge=1, description="Samples (best_of_n, self_consistency) or revisions (revise)."
    )
    beam_width: int | None = Field(default=None, ge=1, description="Beams (beam) or subtrees (dvts).")
    expansions: int | None = Field(default=None, ge=1, description="Children sampled per expanded node.")
    simulations: int | None = Field(default=None, ge=1, description="MCTS iterations.")
    rollout: bool | None = Field(
        default=None, description="MCTS and beam value a step by whole replies through it (default true)."
    )
    prm: bool | str | None = Field(
        default=None,
        description="true: score steps with the PRM paired with the model; false: by the policy's own "
        "step probability; a string names the served PRM. Unset: the paired PRM where one is served, "
        "else the policy's step probability.",
    )
    aggregate: str | None = Field(
        default=None, description="How step scores combine into a path's: min, mean, last or prod."
    )
    verifier: bool | None = Field(
        default=None,
        description="Use the task's exact verifier: a verified answer wins and stops the search.",
    )
    trace: bool | None = Field(default=None, description="Record the search tree (GET /v1/traces/{id}).")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature of branches."
    )
    seed: int | None = Field(default=None, description="Makes the search reproducible.")
    max_step_tokens: int | None = Field(default=None, ge=1, description="Tokens one step may take.")
    task: str | None = Field(
        default=None,
        description="How replies split into steps and which answers agree: one of "
        f"{', '.join(sorted(TASKS))} (default: the model's task).",
    )


def parse_search_request(search: SearchRequest | Mapping[str, object]) -> SearchRequest:
    """Pydantic validation, re-raised as a ValueError whose message starts with `search.<param>`."""
    if isinstance(search, SearchRequest):
        return search
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
    are properties of the models (the bundled puzzle policy solves most at 0.3 and far less
    at 0.8), not of the search."""

    temperature: float | None = None  # the request's own temperature, else the policy's
    reply_tokens: int | None = None  # the policy's typical reply length: sizes unset widths
    aggregate: str | None = None  # the PRM's best step aggregation, measured on a tuning split
    task: str | None = None  # the task the policy answers (rewards.tasks); None: the default


def reply_length(model_reply_tokens: int | None, max_reply_tokens: int | None) -> int:
    """How long a reply is planned to run when widths are sized: the model's typical length,
    never more than the request lets a reply run."""
    typical = model_reply_tokens or DEFAULT_REPLY_TOKENS
    return typical if max_reply_tokens is None else min(typical, max_reply_tokens)


def resolve_search(
    search: SearchRequest | Mapping[str, object] | None,
    reasoning_effort: str | None,
    limits: SearchLimits,
    defaults: ModelDefaults = ModelDefaults(),
    request_params: Mapping[str, Any] | None = None,
) -> SearchConfig | None:
    """The search a request asks for, or None for plain generation; ValueError naming a bad knob.

    `request_params` are config fields set by the request's own (OpenAI) parameters, such as
    `stop` or `max_reply_tokens`; a knob of the `search` field with the same name wins."""
    if search is None and reasoning_effort is None:
        return None
    base = preset(reasoning_effort) if reasoning_effort is not None else SearchConfig()
    recommended = {
        "temperature": defaults.temperature,
        "aggregate": defaults.aggregate,
        "task": defaults.task,
    }
    base = with_overrides(base, {k: v for k, v in recommended.items() if v is not None})
    request = parse_search_request(search or {})
    overrides = {**(request_params or {}), **request.model_dump(exclude_none=True)}
    task = TASKS.get(str(overrides.get("task", base.task)))
    if task is not None:  # an unknown task fails below, naming it
        base = with_overrides(base, {"max_step_tokens": task.step_tokens})
    if isinstance(overrides.get("prm"), str):
        overrides["prm_model"] = overrides["prm"]
        overrides["prm"] = True
    try:
        config = with_overrides(base, overrides)
        get_strategy(config.strategy)
        reply = reply_length(defaults.reply_tokens, config.max_reply_tokens)
        widths = widths_for_budget(config.strategy, config.budget_tokens, reply, limits, overrides)
        config = with_overrides(config, dict(widths))
        limits.check(config)
    except ValueError as exc:
        raise ValueError(f"search.{exc}") from None
    return config
