"""`PonderClient` and its async twin against a live Countdown server: a streamed search's
reasoning and summary, traces and their chosen path, viewer links; and the retry policy."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from clients.async_client import AsyncPonderClient
from clients.client import PonderClient
from clients.common import RetryPolicy, StreamDelta, best_path_steps, chosen_path, viewer_url

PUZZLE = "countdown target=31 numbers=19,4,45,99"
SEARCH = {"strategy": "mcts", "budget_tokens": 256, "rollout": False, "seed": 1, "trace": True}
PRM_SUFFIX = re.compile(r"  \[prm \d\.\d\d\]$")


def reasoning_steps(deltas: list[StreamDelta]) -> list[str]:
    """The best path the streamed reasoning log ends on, without `[prm x.xx]` scores."""
    return best_path_steps("".join(d.reasoning_content for d in deltas))


def kind_of(delta: StreamDelta) -> str:
    if delta.search_event is not None:
        return "event"
    return "reasoning" if delta.reasoning_content else "content" if delta.content else "end"


def check_stream(deltas: list[StreamDelta]) -> dict[str, Any]:
    """Tree events and reasoning first, then the answer, then the end with the search summary;
    returns the summary."""
    kinds = [kind_of(d) for d in deltas]
    answer_at = kinds.index("content")
    assert set(kinds[:answer_at]) == {"event", "reasoning"} and kinds[answer_at:] == ["content", "end"]
    events = [d.search_event for d in deltas if d.search_event is not None]
    assert events[0]["kind"] == "progress" and {"expand", "score", "chosen"} <= {e["kind"] for e in events}
    answer = "".join(d.content for d in deltas)
    assert reasoning_steps(deltas) == answer.splitlines()
    summary = deltas[-1].search
    assert summary is not None and summary["strategy"] == "mcts" and summary["trace_id"]
    return summary


def test_stream_carries_reasoning_then_answer_then_summary(countdown_server: Any) -> None:
    with PonderClient(countdown_server.base_url, countdown_server.api_key) as client:
        deltas = list(client.stream(PUZZLE, model="countdown", search=SEARCH))
        summary = check_stream(deltas)
        trace = client.trace(summary["trace_id"])
    path = [node["text"] for node in chosen_path(trace) if node["text"].strip()]
    assert path == trace["answer"].splitlines() == reasoning_steps(deltas)


def test_chat_result_has_reasoning_and_search(countdown_server: Any) -> None:
    with PonderClient(countdown_server.base_url, countdown_server.api_key) as client:
        result = client.chat(PUZZLE, model="countdown", search=SEARCH)
        assert result.search is not None and result.reasoning is not None
        assert [
            PRM_SUFFIX.sub("", line) for line in result.reasoning.splitlines()
        ] == result.text.splitlines()
        listed = client.traces(model="countdown", limit=100)
        assert result.search["trace_id"] in {t["id"] for t in listed["data"]}
        assert (
            client.viewer_url("t-1")
            == f"{countdown_server.base_url}/traces/t-1#key={countdown_server.api_key}"
        )


def test_async_twin_does_the_same(countdown_server: Any) -> None:
    async def session() -> tuple[list[str], list[StreamDelta], dict[str, Any], dict[str, Any]]:
        async with AsyncPonderClient(countdown_server.base_url, countdown_server.api_key) as client:
            models = [m["id"] for m in await client.models()]
            deltas = [d async for d in client.stream(PUZZLE, model="countdown", search=SEARCH)]
            trace = await client.trace(check_stream(deltas)["trace_id"])
            result = await client.chat(PUZZLE, model="countdown", search={**SEARCH, "trace": False})
            return models, deltas, trace, result.raw

    models, deltas, trace, raw = asyncio.run(session())
    assert models[0] == "countdown"
    assert trace["answer"] == "".join(d.content for d in deltas)
    assert raw["search"]["strategy"] == "mcts" and "trace_id" not in raw["search"]


@pytest.mark.parametrize(
    ("status", "num_retries", "max_retries", "expected"),
    [(429, 0, 3, True), (503, 2, 3, True), (429, 3, 3, False), (500, 0, 3, False), (400, 0, 3, False)],
)
def test_retry_only_refusals_and_only_so_often(
    status: int, num_retries: int, max_retries: int, expected: bool
) -> None:
    assert RetryPolicy(max_retries=max_retries).should_retry(status, num_retries) is expected


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=3.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)]:
        assert ceiling / 2 <= policy.delay_s(attempt) <= ceiling
    assert policy.delay_s(0, "2") == 2.0 and policy.delay_s(0, "60") == 3.0
    assert policy.delay_s(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= 0.5  # a date: use the backoff


def test_viewer_url_puts_the_key_in_the_fragment_only() -> None:
    assert viewer_url("http://h:1/", "a b") == "http://h:1/traces/a%20b"
    assert viewer_url("http://h:1", "t", "k/+") == "http://h:1/traces/t#key=k%2F%2B"
