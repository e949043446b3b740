"""Prometheus instruments for searches, observed once per search from its `SearchStats`: the
very figures of the response's `search` object, so a scrape and the responses always agree.

- `ponder_searches_total{model,strategy,outcome}`: outcome is `verified` (the search's verifier
  accepted the answer), `stop` (an answer that ended on its own), `length` (cut by the budget or
  the deadline), `error` or `cancelled` (the client left, or the request timed out).
- Per search, histograms by model and strategy (their `_sum` adds up the responses' fields):
  `ponder_search_nodes_expanded`, `ponder_search_tokens_generated`,
  `ponder_search_prompt_tokens_computed`, `ponder_search_prompt_tokens_reused`,
  `ponder_search_prm_calls` and `ponder_search_duration_seconds` (`elapsed_s`).
- `ponder_prm_call_duration_seconds{prm}`: each PRM call's wall time, its wait for the compute
  lock included (what the search waited).
- `ponder_search_queue_seconds`: from the request's arrival (`RequestMetricsMiddleware`) to the
  search's start: parsing, admission, the PRM's first load. Admission never queues (it answers
  429), so this stays small unless a PRM is loading.
- `ponder_search_time_to_first_chunk_seconds`: streamed searches, from the request's arrival to
  the first chunk that carries text (a reasoning step or the answer).

A search's tokens also go into `ponder_prompt_tokens` / `ponder_completion_tokens`, like any
generation's, however the search ends: they were computed either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel

from search.config import SearchConfig
from search.context import SearchContext, SearchStats
from search.result import SearchResult
from search.runner import run_search

TokenRecorder = Callable[[str, int, int], None]
"""`ServerMetrics.record_tokens(model, num_prompt_tokens, num_completion_tokens)`."""

COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
PER_SEARCH = {
    "nodes_expanded": "nodes expanded per search (the response's search.nodes_expanded)",
    "tokens_generated": "tokens generated per search, every branch (search.tokens_generated)",
    "prompt_tokens_computed": "prompt tokens prefilled per search (search.prompt_tokens_computed)",
    "prompt_tokens_reused": "prompt tokens served from the prefix cache per search",
    "prm_calls": "PRM calls per search (search.prm_calls)",
}


def search_outcome(result: SearchResult) -> str:
    """How a finished search ended: `verified`, `stop` or `length`."""
    if result.is_verified:
        return "verified"
    return "stop" if result.finish_reason == "stop" else "length"


def _stat(stats: SearchStats, name: str) -> int:
    return int(getattr(stats, f"num_{name}"))


class SearchMetrics:
    """The search instruments, registered in the server's registry."""

    def __init__(self, registry: CollectorRegistry, record_tokens: TokenRecorder) -> None:
        self._record_tokens = record_tokens
        by_search = ["model", "strategy"]
        self.searches = Counter(
            "ponder_searches", "searches by outcome", [*by_search, "outcome"], registry=registry
        )
        self.per_search = {
            name: Histogram(f"ponder_search_{name}", doc, by_search, buckets=COUNT_BUCKETS, registry=registry)
            for name, doc in PER_SEARCH.items()
        }
        self.duration = self._seconds(
            "ponder_search_duration_seconds", "search time (search.elapsed_s)", registry
        )
        self.queue = self._seconds("ponder_search_queue_seconds", "request arrival to search start", registry)
        self.first_chunk = self._seconds(
            "ponder_search_time_to_first_chunk_seconds", "arrival to the first streamed text", registry
        )
        self.prm_latency = Histogram(
            "ponder_prm_call_duration_seconds",
            "wall time of one PRM call (lock wait included)",
            ["prm"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

    @staticmethod
    def _seconds(name: str, doc: str, registry: CollectorRegistry) -> Histogram:
        return Histogram(name, doc, ["model", "strategy"], buckets=SECONDS_BUCKETS, registry=registry)

    def observation(
        self, model: str, config: SearchConfig, prm: str | None, arrived: float | None
    ) -> SearchObservation:
        """What one search request reports to (`prm`: the PRM id guiding it, None without)."""
        return SearchObservation(self, model, config.strategy, prm, arrived)

    def record(self, observation: SearchObservation, stats: SearchStats, outcome: str) -> None:
        """One ended search: its outcome, its per-search figures, its PRM calls and tokens."""
        labels = (observation.model, observation.strategy)
        self.searches.labels(*labels, outcome).inc()
        for name, histogram in self.per_search.items():
            histogram.labels(*labels).observe(_stat(stats, name))
        self.duration.labels(*labels).observe(stats.elapsed_s)
        if observation.prm is not None:
            for seconds in stats.prm_call_seconds:
                self.prm_latency.labels(observation.prm).observe(seconds)
        prompt = stats.num_prompt_tokens_computed + stats.num_prompt_tokens_reused
        self._record_tokens(observation.model, prompt, stats.num_tokens_generated)


@dataclass(frozen=True)
class SearchObservation:
    """One search request's labels and arrival time (`time.perf_counter()`; None: unknown)."""

    metrics: SearchMetrics
    model: str
    strategy: str
    prm: str | None
    arrived: float | None

    async def run(self, ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
        """`run_search`, observed: its queue time on start, everything else however it ends."""
        if self.arrived is not None:
            waited = max(0.0, time.perf_counter() - self.arrived)
            self.metrics.queue.labels(self.model, self.strategy).observe(waited)
        outcome = "error"
        try:
            result = await run_search(ctx, prompt_ids, config)
            outcome = search_outcome(result)
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self.metrics.record(self, ctx.stats, outcome)

    async def timed_chunks(self, chunks: AsyncIterator[BaseModel]) -> AsyncIterator[BaseModel]:
        """`chunks` unchanged; the first one carrying text is observed as time to first chunk."""
        started = self.arrived if self.arrived is not None else time.perf_counter()
        is_seen = False
        try:
            async for chunk in chunks:
                if not is_seen and _carries_text(chunk):
                    is_seen = True
                    waited = time.perf_counter() - started
                    self.metrics.first_chunk.labels(self.model, self.strategy).observe(waited)
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()


def _carries_text(chunk: BaseModel) -> bool:
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if getattr(delta, "reasoning_content", None) or getattr(delta, "content", None):
            return True
    return False
