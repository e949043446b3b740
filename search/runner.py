"""The single entry point the server calls: pick the strategy, arm the budget, time the search."""

from __future__ import annotations

import time

from rewards.tasks import get_task
from search.budget import Budget
from search.config import SearchConfig
from search.context import SearchContext, SearchStats
from search.registry import get_strategy
from search.result import SearchResult


async def run_search(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """Run `config.strategy` from `prompt_ids` within `config`'s token and time budget.

    `ctx` gets a fresh budget and stats, so one context must not serve two searches at once.
    Cancelling the awaiting task aborts the engine work in flight and frees its cache references.
    """
    strategy = get_strategy(config.strategy)
    stop_on_verified = config.verifier and ctx.verifier is not None
    ctx.budget = Budget(config.budget_tokens, config.max_seconds, stop_on_verified=stop_on_verified)
    ctx.stats = SearchStats()
    ctx.task = get_task(config.task)
    ctx.num_committed = 0
    ctx.events = ctx.events.fresh()
    began = time.monotonic()
    try:
        return await strategy(ctx, list(prompt_ids), config)
    finally:
        ctx.stats.elapsed_s = time.monotonic() - began
