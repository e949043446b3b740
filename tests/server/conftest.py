"""Fixtures for tests against the live server: an authenticated httpx client and a metric reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

MetricReader = Callable[..., float]

HTTP_TIMEOUT_S = 120.0  # one generation on a busy 2-core machine


@pytest.fixture
def http(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server.base_url, headers=live_server.headers, timeout=HTTP_TIMEOUT_S
    ) as client:
        yield client


@pytest.fixture
def read_metric(live_server: Any) -> MetricReader:
    """`read_metric("ponder_cache_live_nodes")`: the sample for the served model (or the unlabeled one)."""

    def read(sample_name: str, default: float | None = None) -> float:
        text = httpx.get(f"{live_server.base_url}/metrics", timeout=10.0).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (
                    sample.name == sample_name
                    and sample.labels.get("model", live_server.model) == live_server.model
                ):
                    return float(sample.value)
        if default is None:
            raise AssertionError(f"{sample_name} is not in /metrics")
        return default

    return read
