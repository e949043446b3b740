"""Search strategies by name: every entry has the same signature (search-and-learn's contract)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from search.config import SearchConfig
from search.context import SearchContext
from search.result import SearchResult
from search.strategies import beam, beam_lookahead, best_of_n, dvts, greedy, mcts, revise, self_consistency

Strategy = Callable[[SearchContext, list[int], SearchConfig], Awaitable[SearchResult]]


async def beam_search(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """`beam`: steps valued by rollouts through them (`beam_lookahead`, the default), or with
    `rollout: false` by the PRM's score of the partial path (`beam`)."""
    strategy = beam_lookahead.run if config.rollout else beam.run
    return await strategy(ctx, prompt_ids, config)


STRATEGIES: dict[str, Strategy] = {
    "greedy": greedy.run,
    "best_of_n": best_of_n.run,
    "self_consistency": self_consistency.run,
    "beam": beam_search,
    "dvts": dvts.run,
    "mcts": mcts.run,
    "revise": revise.run,
}


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; ValueError listing the valid names."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(sorted(STRATEGIES))}; got {name!r}")
    return STRATEGIES[name]
