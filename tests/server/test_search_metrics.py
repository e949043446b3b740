"""Search metrics on a live Countdown server: after a few searches, `GET /metrics` (what `curl`
sees) holds the search families, and their values add up to the responses' `search` objects."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.models import COUNTDOWN_DEFAULT_PRM
from server.search_metrics import PER_SEARCH

PUZZLE = [{"role": "user", "content": "countdown target=93 numbers=4,7,25,50"}]
SEARCHES = [  # (search options, streamed)
    ({"strategy": "mcts", "budget_tokens": 256, "seed": 1}, False),
    ({"strategy": "beam", "budget_tokens": 128, "seed": 2}, False),
    ({"strategy": "best_of_n", "budget_tokens": 128, "seed": 3, "verifier": True}, True),
]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text  # /metrics is open, like for curl
    return {
        (sample.name, frozenset(sample.labels.items())): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def run_search(server: Any, search: dict[str, Any], is_streamed: bool) -> dict[str, Any]:
    """The response's `search` object (from the last chunk when streamed) and its finish reason."""
    body = {"model": "countdown", "messages": PUZZLE, "search": search, "stream": is_streamed}
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=120.0) as http:
        if not is_streamed:
            reply = http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            payload = reply.json()
            return {**payload["search"], "finish_reason": payload["choices"][0]["finish_reason"]}
        with http.stream("POST", "/v1/chat/completions", json=body) as reply:
            lines = [line.removeprefix("data: ") for line in reply.iter_lines() if line.startswith("data: ")]
    last = json.loads(lines[-2])  # the chunk before [DONE] carries the summary
    return {**last["search"], "finish_reason": last["choices"][0]["finish_reason"]}


def outcome(summary: dict[str, Any]) -> str:
    if summary["is_verified"]:
        return "verified"
    return "stop" if summary["finish_reason"] == "stop" else "length"


@pytest.fixture(scope="module")
def scraped(countdown_server: Any) -> tuple[Samples, Samples, list[dict[str, Any]]]:
    before = scrape(countdown_server.base_url)
    summaries = [run_search(countdown_server, search, streamed) for search, streamed in SEARCHES]
    return before, scrape(countdown_server.base_url), summaries


def test_searches_are_counted_by_strategy_and_outcome(scraped: Any) -> None:
    before, after, summaries = scraped
    expected = Counter((s["strategy"], outcome(s)) for s in summaries)
    for (strategy, result), count in expected.items():
        labels = {"model": "countdown", "strategy": strategy, "outcome": result}
        assert delta(before, after, "ponder_searches_total", **labels) == count


@pytest.mark.parametrize("field", sorted(PER_SEARCH))
def test_per_search_histograms_add_up_to_the_responses(scraped: Any, field: str) -> None:
    before, after, summaries = scraped
    for summary in summaries:
        labels = {"model": "countdown", "strategy": summary["strategy"]}
        assert delta(before, after, f"ponder_search_{field}_count", **labels) == 1
        assert delta(before, after, f"ponder_search_{field}_sum", **labels) == summary[field]


def test_durations_prm_latency_and_tokens_match_the_responses(scraped: Any) -> None:
    before, after, summaries = scraped
    for summary in summaries:
        labels = {"model": "countdown", "strategy": summary["strategy"]}
        elapsed = delta(before, after, "ponder_search_duration_seconds_sum", **labels)
        assert elapsed == pytest.approx(summary["elapsed_s"], abs=1e-3)
        assert delta(before, after, "ponder_search_queue_seconds_count", **labels) == 1
    prm = {"prm": COUNTDOWN_DEFAULT_PRM}
    num_prm_calls = sum(s["prm_calls"] for s in summaries)
    assert num_prm_calls > 0
    assert delta(before, after, "ponder_prm_call_duration_seconds_count", **prm) == num_prm_calls
    assert delta(before, after, "ponder_prm_call_duration_seconds_sum", **prm) > 0
    model = {"model": "countdown"}  # the generation counters include search tokens
    generated = sum(s["tokens_generated"] for s in summaries)
    prompt = sum(s["prompt_tokens_computed"] + s["prompt_tokens_reused"] for s in summaries)
    assert delta(before, after, "ponder_completion_tokens_total", **model) == generated
    assert delta(before, after, "ponder_prompt_tokens_total", **model) == prompt


def test_only_streamed_searches_time_their_first_chunk(scraped: Any) -> None:
    before, after, summaries = scraped
    for (_, is_streamed), summary in zip(SEARCHES, summaries, strict=True):
        labels = {"model": "countdown", "strategy": summary["strategy"]}
        count = delta(before, after, "ponder_search_time_to_first_chunk_seconds_count", **labels)
        assert count == int(is_streamed)
        if is_streamed:
            first = delta(before, after, "ponder_search_time_to_first_chunk_seconds_sum", **labels)
            assert 0 < first <= summary["elapsed_s"] + 5.0
