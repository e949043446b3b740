"""Everything a strategy is handed: the engine, the PRM, the verifier, the task, the budget and
the stats.

Strategies never call the engine or the PRM directly: `search.expand` does it through the
context so that token budgeting, prefix-reuse accounting and PRM serialisation are done once.
Search depends only on protocols: the engine's and the torch-free ones of rewards (the PRM's and
the task's), so importing it loads no model code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.protocol import COMPUTE_LOCK, Engine
from rewards.prm_protocol import ProcessRewardModel
from rewards.tasks import DEFAULT_TASK, Task, get_task
from search.budget import Budget
from search.events import SearchEvents
from search.tree import Node, SearchTree

Verifier = Callable[[str], bool]


@dataclass
class SearchStats:
    """Counters for one search (prompt tokens are counted once per prefilled prefix)."""

    num_nodes_expanded: int = 0
    num_tokens_generated: int = 0
    num_prompt_tokens_computed: int = 0
    num_prompt_tokens_reused: int = 0
    num_engine_calls: int = 0
    num_prm_calls: int = 0
    elapsed_s: float = 0.0
    prm_call_seconds: list[float] = field(default_factory=list)  # each PRM call's wall time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PrmScorer:
    """Runs a synchronous PRM off the event loop, holding a compute lock.

    The lock keeps a PRM forward pass and an engine forward pass from running at once: each
    would start torch's full thread pool on the same cores. The caller passes the lock of the
    engines the PRM shares cores with; the default is the one the in-process engines hold.
    """

    def __init__(self, prm: ProcessRewardModel, lock: AbstractContextManager[object] = COMPUTE_LOCK) -> None:
        self.prm = prm
        self.lock = lock

    async def score(self, prompt: str, paths: Sequence[list[str]]) -> list[list[float]]:
        items = [(prompt, list(steps)) for steps in paths]
        return await asyncio.to_thread(self._score_locked, items)

    def _score_locked(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        with self.lock:
            return self.prm.score_batch(items)


@dataclass
class SearchContext:
    """One search's collaborators. `prompt_text` is what the PRM sees as the problem statement
    (the user message). `task`, `budget` and `stats` are set by `run_search` from the config;
    `events` is where the search reports what it does (`search.events`; nowhere by default)."""

    engine: Engine
    prompt_text: str
    prm: PrmScorer | None = None
    verifier: Verifier | None = None
    events: SearchEvents = field(default_factory=SearchEvents)
    task: Task = field(default_factory=lambda: get_task(DEFAULT_TASK))
    cache_salt: str | None = None  # the prefix-cache namespace of every engine call (SamplingParams)
    budget: Budget = field(default_factory=lambda: Budget(max_tokens=0, max_seconds=1.0))
    stats: SearchStats = field(default_factory=SearchStats)
    num_committed: int = 0

    def new_tree(self, prompt_ids: list[int]) -> SearchTree:
        """An empty tree whose replies join their steps as the task writes them."""
        return SearchTree(prompt_ids, step_end=self.task.step_end)

    def commit(self, path: list[Node]) -> None:
        """Report `path` settled (the best path's sure prefix) when it is longer than before."""
        if len(path) > self.num_committed:
            self.events.committed(path[-1])
        self.num_committed = max(self.num_committed, len(path))
