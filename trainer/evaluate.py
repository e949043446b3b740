"""Run one search setting over a list of problems and compare two runs problem by problem.

The strategy bench and the learner's gate share this: the gate promotes a candidate only when
it is not worse than the served version on the same problems, judged by paired won/lost
(McNemar), which resolves far smaller differences than two accuracies' standard errors.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from engine.protocol import ChatMessage, Engine, ModelCard
from engine.search_defaults import search_defaults
from search.api import resolve_search
from search.config import SearchConfig, SearchLimits
from search.context import PrmScorer, SearchContext
from search.runner import run_search

Check = Callable[[str, str], bool | None]
"""(user message, reply) -> the exact outcome (a task's `verify`)."""


@dataclass(frozen=True)
class Cell:
    """One strategy at one budget, averaged over the problems."""

    strategy: str
    budget_tokens: int
    num_problems: int
    accuracy: float
    mean_tokens: float
    prompt_tokens_computed: int
    prompt_tokens_reused: int
    wall_s: float
    solved: tuple[int, ...]
    """Indices of the problems solved: cells run on the same problems compare pairwise."""
    commit: str = ""
    """The git commit the cell ran on (with `+` when the tree had changes)."""
    num_past_deadline: int = 0
    """Searches that ran out of `max_seconds` before their budget: on a loaded machine these
    answer early (or not at all), so the cell then measures the machine, not the strategy."""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Cell:
        """A cell as `dataclasses.asdict` wrote it to JSON (where `solved` became a list)."""
        return cls(**{**raw, "solved": tuple(raw["solved"])})

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.accuracy * (1 - self.accuracy) / self.num_problems)

    def won_lost(self, other: Cell) -> tuple[int, int]:
        """Problems this cell solved that `other` did not, and the reverse. On one problem set
        the difference is far less noisy than two accuracies' standard errors say."""
        mine, theirs = set(self.solved), set(other.solved)
        return len(mine - theirs), len(theirs - mine)

    def versus(self, other: Cell) -> str:
        won, lost = self.won_lost(other)
        return f"+{won}/-{lost}"

    def paired_z(self, other: Cell) -> float:
        """The accuracy difference over its paired standard error (McNemar's): only problems one
        cell solved and the other did not vary it, so 1000 problems resolve 2 points."""
        won, lost = self.won_lost(other)
        variance = won + lost - (won - lost) ** 2 / self.num_problems
        return (won - lost) / math.sqrt(variance) if variance > 0 else 0.0


@dataclass(frozen=True)
class Outcome:
    is_correct: bool
    tokens: int
    computed: int
    reused: int
    is_past_deadline: bool = False


async def solve(
    engine: Engine, prm: PrmScorer | None, message: str, check: Check, config: SearchConfig
) -> Outcome:
    """One search on one user message, graded by `check` (the verifier never guides it)."""
    prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
    ctx = SearchContext(engine, message, prm=prm)
    result = await run_search(ctx, prompt_ids, config)
    s = result.stats
    return Outcome(
        bool(check(message, result.text)),
        s.num_tokens_generated,
        s.num_prompt_tokens_computed,
        s.num_prompt_tokens_reused,
        ctx.budget.remaining_seconds() == 0.0,
    )


async def run_cell(
    engine: Engine,
    prm: PrmScorer | None,
    messages: list[str],
    check: Check,
    config: SearchConfig,
    concurrency: int,
) -> Cell:
    """All problems for one (strategy, budget), `concurrency` searches in flight at a time, so
    the engine batches their steps."""
    gate = asyncio.Semaphore(concurrency)
    progress = tqdm(total=len(messages), desc=f"{config.strategy}@{config.budget_tokens}", mininterval=10)

    async def one(message: str) -> Outcome:
        async with gate:
            outcome = await solve(engine, prm, message, check, config)
        progress.update()
        return outcome

    began = time.monotonic()
    outcomes = await asyncio.gather(*(one(m) for m in messages))
    progress.close()
    cell = Cell(
        strategy=config.strategy,
        budget_tokens=config.budget_tokens,
        num_problems=len(outcomes),
        accuracy=sum(o.is_correct for o in outcomes) / len(outcomes),
        mean_tokens=sum(o.tokens for o in outcomes) / len(outcomes),
        prompt_tokens_computed=sum(o.computed for o in outcomes),
        prompt_tokens_reused=sum(o.reused for o in outcomes),
        wall_s=time.monotonic() - began,
        solved=tuple(i for i, o in enumerate(outcomes) if o.is_correct),
        num_past_deadline=sum(o.is_past_deadline for o in outcomes),
    )
    print(f"{config.strategy}@{config.budget_tokens}: accuracy {cell.accuracy:.3f}", flush=True)
    return cell


OFFLINE_LIMITS = SearchLimits(max_seconds=600.0)
"""Dozens of searches share 2 cores offline, so one may take minutes of wall time."""


def offline_search_config(
    model_id: str, prm_id: str | None, search: dict[str, object], card: ModelCard | None = None
) -> SearchConfig:
    """What the server runs for `search` on a bundled `model_id` guided by `prm_id`: the same
    resolution and the same model defaults (`search_defaults`: the model's recommended
    temperature, reply length and task, the PRM's aggregation); the bench and the learner both
    call this. Pass the engine's `card` to search with the loaded version's own defaults (a
    learned version recommends its own temperature), as the server does."""
    defaults = search_defaults(model_id, prm_id, card=card)
    search = {"max_seconds": OFFLINE_LIMITS.max_seconds, **search}
    if prm_id is None:
        search["prm"] = False
    config = resolve_search(search, None, OFFLINE_LIMITS, defaults)
    if config is None:  # unreachable: a search dict always resolves to a search
        raise ValueError("no search was resolved")
    return config
