"""Live streamed search through the real server, the official `openai` client and the bundled
Countdown policy: for every strategy the stream draws the same tree the trace records, writes
the best path as reasoning before the answer, answers as the non-streamed search does, and
ends with usage and [DONE]. Structure and order are asserted, never timing (bench/stream_latency)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from bench.server_process import running_server
from clients.common import best_path_steps
from engine.models import COUNTDOWN_DEFAULT_PRM, is_available
from search.registry import STRATEGIES

PRM_SERVED = is_available(COUNTDOWN_DEFAULT_PRM)
PUZZLE = [{"role": "user", "content": "countdown target=24 numbers=2,3,4,6"}]
BUDGET = 320
EVENT_KINDS = {"expand", "score", "prune", "rollout", "commit", "chosen", "progress"}
pytestmark = pytest.mark.skipif(not is_available("countdown"), reason="countdown weights absent")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("stream_server")
    models = "countdown" + f",{COUNTDOWN_DEFAULT_PRM}" * PRM_SERVED
    flags = {"--models": models, "--trace-db": folder / "traces.sqlite3", "--num-threads": 1}
    with running_server(flags, folder) as url:
        yield url


def search_body(strategy: str) -> dict[str, Any]:
    return {"strategy": strategy, "budget_tokens": BUDGET, "prm": PRM_SERVED, "seed": 3, "trace": True}


@dataclass
class Stream:
    """One streamed search as the `openai` client parsed it: each chunk's kind, in order."""

    kinds: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str = ""
    content: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    usage: openai.types.CompletionUsage | None = None


def stream_search(client: openai.OpenAI, strategy: str) -> Stream:
    stream = Stream()
    chunks = client.chat.completions.create(
        model="countdown",
        messages=PUZZLE,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"search": search_body(strategy)},
    )
    for chunk in chunks:
        if chunk.usage is not None:
            stream.kinds.append("usage")
            stream.usage = chunk.usage
            continue
        delta, extra = chunk.choices[0].delta, chunk.choices[0].delta.model_extra or {}
        if "search_event" in extra:
            stream.kinds.append("event")
            stream.events.append(extra["search_event"])
        if extra.get("reasoning_content"):
            stream.kinds.append("reasoning")
            stream.reasoning += extra["reasoning_content"]
        if delta.content:
            stream.kinds.append("content")
            stream.content += delta.content
        if chunk.choices[0].finish_reason is not None:
            stream.kinds.append("finish")
            stream.summary = (chunk.model_extra or {})["search"]
    return stream


def trace_nodes(base_url: str, trace_id: str) -> dict[int, dict[str, Any]]:
    """The recorded tree by `seq`, each node with its parent's `seq`."""
    trace = httpx.get(f"{base_url}/v1/traces/{trace_id}", timeout=30).json()
    nodes: dict[int, dict[str, Any]] = {}
    stack = [(trace["tree"]["tree"]["root"], None)]
    while stack:
        node, parent = stack.pop()
        nodes[node["seq"]] = {**node, "parent": parent}
        stack.extend((child, node["seq"]) for child in node["children"])
    return nodes


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_streamed_search_draws_the_traced_tree_then_answers(base_url: str, strategy: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=300)
    stream = stream_search(client, strategy)
    # order: events and reasoning first, then the answer, the finish, usage; [DONE] closed the iterator
    assert stream.kinds[0] == "event" and stream.events[0]["kind"] == "progress"
    assert stream.kinds.index("reasoning") < stream.kinds.index("content")
    assert stream.kinds[-2:] == ["finish", "usage"] and stream.kinds.count("content") == 1
    assert all(event["kind"] in EVENT_KINDS for event in stream.events)
    assert stream.usage is not None and stream.usage.completion_tokens == stream.summary["tokens_generated"]

    nodes = trace_nodes(base_url, stream.summary["trace_id"])
    expands = [e for e in stream.events if e["kind"] == "expand"]
    assert [e["node"] for e in expands] == list(range(1, len(nodes)))  # 1..N as they joined: `seq`
    for event in expands:
        traced = nodes[event["node"]]
        assert (event["parent"], event["text"]) == (traced["parent"], traced["text"])
    scores = {e["node"]: e["score"] for e in stream.events if e["kind"] == "score"}
    traced_scores = {seq: n["prm_score"] for seq, n in nodes.items() if n["prm_score"] is not None}
    assert scores and scores == traced_scores
    [chosen] = [e["node"] for e in stream.events if e["kind"] == "chosen"]
    assert chosen == max(seq for seq, node in nodes.items() if node["is_chosen"])  # the path's end

    whole = client.chat.completions.create(
        model="countdown",
        messages=PUZZLE,  # type: ignore[arg-type]
        extra_body={"search": search_body(strategy)},
    )
    message = whole.choices[0].message
    assert stream.content == message.content
    steps = best_path_steps((message.model_extra or {})["reasoning_content"])
    assert best_path_steps(stream.reasoning) == steps == stream.content.splitlines()


def test_every_chunk_is_json_and_the_stream_ends_with_done(base_url: str) -> None:
    payload = {"model": "countdown", "messages": PUZZLE, "stream": True, "search": search_body("mcts")}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=payload, timeout=300) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    kinds = {chunk["choices"][0]["delta"].get("search_event", {}).get("kind") for chunk in chunks}
    assert {"expand", "score", "rollout", "chosen"} <= kinds


def test_openapi_describes_the_stream_and_its_search_events(base_url: str) -> None:
    schema = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    content = schema["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert content["text/event-stream"]["schema"]["$ref"].endswith("/ChatCompletionChunk")
    delta = schema["components"]["schemas"]["DeltaMessage"]["properties"]
    assert "search_event" in delta and "reasoning_content" in delta
    kinds = schema["components"]["schemas"]["SearchEventOut"]["properties"]["kind"]["enum"]
    assert set(kinds) == EVENT_KINDS
