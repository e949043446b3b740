"""Everything a strategy is handed: the engine, the PRM, the verifier, the task, the budget and
the stats.

Strategies never call the engine or the PRM directly: `search.expand` does it through the
context so that token budgeting, prefix-reuse accounting and PRM serialisation are done once.
Search depends only on protocols: the engine's and the torch-free ones of rewards (the PRM's and
the task's), so importing it loads no model code.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.protocol import COMPUTE_LOCK, Engine
from engine.turnstile import CoreTurnstile
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
    """Runs a synchronous PRM off the event loop, holding cores of the compute turnstile.

    The turnstile keeps a PRM forward pass from thrashing the cores an engine's pass runs on.
    Calls run on a thread of the scorer's own. With `threads` set they run that many torch
    threads and take as many cores, so on a machine with cores to spare the PRM scores one
    search's replies while the engine goes on decoding for the other requests; unset, a call
    takes every core. The caller passes the turnstile of the engines the PRM shares cores with;
    the default is the one the in-process engines take.
    """

    def __init__(
        self, prm: ProcessRewardModel, lock: CoreTurnstile = COMPUTE_LOCK, threads: int | None = None
    ) -> None:
        self.prm = prm
        self.lock = lock
        self.threads = threads
        # A thread of its own either way: a new thread's torch count is whatever another model's
        # thread set last, so unset means the count of the thread that builds the scorer.
        self._executor = ThreadPoolExecutor(
            1, "ponder-prm", initializer=_use_torch_threads, initargs=(threads or _torch_threads(),)
        )

    async def score(self, prompt: str, paths: Sequence[list[str]]) -> list[list[float]]:
        items = [(prompt, list(steps)) for steps in paths]
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._score_locked, items)

    def close(self) -> None:
        """Stop the scoring thread and close the PRM if it holds anything (a vLLM one owns a
        process); no search may score through it afterwards."""
        self._executor.shutdown(wait=True)
        close = getattr(self.prm, "close", None)
        if close is not None:
            close()

    def _score_locked(self, items: list[tuple[str, list[str]]]) -> list[list[float]]:
        with self.lock.cores(self.threads):
            return self.prm.score_batch(items)


def _torch_threads() -> int:
    """This thread's torch count, 1 if the PRM is no torch model (search itself loads no torch)."""
    torch = sys.modules.get("torch")
    return 1 if torch is None else int(torch.get_num_threads())


def _use_torch_threads(threads: int) -> None:
    """Set this thread's torch pool, if the PRM is a torch model (search itself loads no torch)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


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
