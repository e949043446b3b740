"""Prometheus metrics: HTTP traffic, tokens, admission, served model versions, every engine's
prefix-cache counters, and searches (`server.search_metrics`).

Each app gets its own `CollectorRegistry`, so several apps (tests) never share counters. Cache
figures are read from `engine.cache_stats()` at scrape time by a custom collector rather than
copied into gauges on every request: the engine is the one source of truth.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.protocol import CacheStats, Engine
from server.search_metrics import SearchMetrics

logger = logging.getLogger("ponder.server")

# CacheStats fields that only grow; every other field is a current value (a gauge).
CACHE_COUNTER_FIELDS = frozenset(
    {
        "prompt_tokens_requested",
        "prompt_tokens_computed",
        "prompt_tokens_reused",
        "evictions",
        "generated_tokens",
    }
)
UNMATCHED_ROUTE = "unmatched"
ARRIVED_SCOPE_KEY = "ponder.arrived"
"""`time.perf_counter()` when the request reached the outermost middleware (queue-time metrics)."""
# Waits from milliseconds (an idle engine) to minutes (a burst): past queue_timeout_s's default.
WAIT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class CacheStatsCollector(Collector):
    """`ponder_cache_<field>{model}` for every `CacheStats` field of every started engine."""

    def __init__(self, engines: Callable[[], Mapping[str, Engine]]) -> None:
        self._engines = engines

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for field in dataclasses.fields(CacheStats):
            name = f"ponder_cache_{field.name}"
            doc = f"engine CacheStats.{field.name}, per served model"
            family_type = CounterMetricFamily if field.name in CACHE_COUNTER_FIELDS else GaugeMetricFamily
            families[field.name] = family_type(name, doc, labels=["model"])
        for model_id, engine in self._engines().items():
            try:
                stats = engine.cache_stats()
            except Exception:
                logger.exception("cache_stats() failed for %s", model_id)
                continue
            for field_name, family in families.items():
                family.add_metric([model_id], float(getattr(stats, field_name)))
        yield from families.values()


class ModelVersionCollector(Collector):
    """`ponder_model_version{model}`: the version number each versioned model serves now."""

    def __init__(self, versions: Callable[[], Mapping[str, int]]) -> None:
        self._versions = versions

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "ponder_model_version", "published version served (engine.versions), per model", labels=["model"]
        )
        for model_id, version in sorted(self._versions().items()):
            family.add_metric([model_id], float(version))
        yield family


class ServerMetrics:
    """The server's own instruments, registered in a private registry."""

    def __init__(
        self,
        engines: Callable[[], Mapping[str, Engine]],
        num_in_flight: Callable[[], int],
        model_versions: Callable[[], Mapping[str, int]] = dict,
        num_retiring: Callable[[], int] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ponder_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ponder_http_request_duration_seconds",
            "time to the last byte of the response",
            ["route"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "ponder_prompt_tokens", "prompt tokens of served requests", ["model"], registry=self.registry
        )
        self.completion_tokens = Counter(
            "ponder_completion_tokens", "generated tokens, all choices", ["model"], registry=self.registry
        )
        self.queue_time = Histogram(
            "ponder_queue_seconds",
            "from admission until the engine began the request (its prefill)",
            ["model"],
            buckets=WAIT_BUCKETS_S,
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "ponder_time_to_first_token_seconds",
            "streamed requests: from admission until the first token reached the server",
            ["model"],
            buckets=WAIT_BUCKETS_S,
            registry=self.registry,
        )
        in_flight = Gauge("ponder_requests_in_flight", "requests holding engine work", registry=self.registry)
        in_flight.set_function(lambda: float(num_in_flight()))
        retiring = Gauge(
            "ponder_engines_retiring",
            "replaced engines still open for the requests that started on them",
            registry=self.registry,
        )
        retiring.set_function(lambda: float(num_retiring()))
        self.registry.register(CacheStatsCollector(engines))
        self.registry.register(ModelVersionCollector(model_versions))
        self.search = SearchMetrics(self.registry, self.record_tokens)

    def record_tokens(self, model_id: str, num_prompt_tokens: int, num_completion_tokens: int) -> None:
        self.prompt_tokens.labels(model_id).inc(num_prompt_tokens)
        self.completion_tokens.labels(model_id).inc(num_completion_tokens)

    def observe_queue(self, model_id: str, seconds: float) -> None:
        self.queue_time.labels(model_id).observe(seconds)

    def observe_first_token(self, model_id: str, seconds: float) -> None:
        self.time_to_first_token.labels(model_id).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts every HTTP response by route template (not raw path: bounded label cardinality)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope[ARRIVED_SCOPE_KEY] = started
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def arrival_time(scope: Scope) -> float | None:
    """When the request arrived (`RequestMetricsMiddleware`); None outside that middleware."""
    arrived = scope.get(ARRIVED_SCOPE_KEY)
    return arrived if isinstance(arrived, float) else None
