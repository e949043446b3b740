"""vLLM's prefix-cache counters, captured through its stat-logger hook.

The engine core reports, with every step's outputs, how many prompt tokens the newly scheduled
requests looked up in the prefix cache (`queries`) and how many it found (`hits`); the same
numbers feed vLLM's `vllm:prefix_cache_queries` / `vllm:prefix_cache_hits` metrics. With `n > 1`
vLLM runs `n` child requests, each looking up the prompt, so each counts.
"""

from __future__ import annotations

from typing import Any

from vllm.v1.metrics.loggers import StatLoggerBase  # type: ignore[import-not-found]


class PrefixCacheCounter:
    """Running totals since start; `factory` is what `AsyncLLM(stat_loggers=[...])` takes."""

    def __init__(self) -> None:
        self.queries = 0
        self.hits = 0

    def factory(self, vllm_config: Any, engine_index: int = 0) -> StatLoggerBase:
        return _CounterLogger(self)


class _CounterLogger(StatLoggerBase):  # type: ignore[misc]
    def __init__(self, counter: PrefixCacheCounter) -> None:
        self.counter = counter

    def record(
        self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
    ) -> None:
        if scheduler_stats is None:
            return
        stats = scheduler_stats.prefix_cache_stats
        self.counter.queries += stats.queries
        self.counter.hits += stats.hits

    def log_engine_initialized(self) -> None:
        pass
