"""The wire format, read with plain httpx: SSE streams, completions, models, and metrics."""

from __future__ import annotations

import json
from typing import Any

import httpx
from transformers import AutoTokenizer

from engine.models import resolve_model_dir

HI = [{"role": "user", "content": "Say hello."}]
PROMPT = "The capital of France is"


def read_sse(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON chunks of an SSE response and its raw `data:` lines, in order."""
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    chunks = [json.loads(line[len("data: ") :]) for line in lines if line != "data: [DONE]"]
    return chunks, lines


def test_chat_stream_wire_format(http: httpx.Client, live_server: Any) -> None:
    body = {"model": live_server.model, "messages": HI, "max_tokens": 3, "n": 2, "stream": True}
    chunks, lines = read_sse(http, "/v1/chat/completions", body | {"stream_options": {"include_usage": True}})
    assert lines[-1] == "data: [DONE]" and lines.count("data: [DONE]") == 1
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert [chunk["choices"][0]["delta"] for chunk in chunks[:2]] == [
        {"role": "assistant", "content": ""}
    ] * 2
    finished = [c["choices"][0]["index"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert sorted(finished) == [0, 1]  # one finish chunk per choice
    usage_chunks = [chunk for chunk in chunks if chunk.get("usage")]
    assert usage_chunks == [chunks[-1]] and chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert 0 < usage["completion_tokens"] <= 2 * 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 <= usage["prompt_tokens_details"]["cached_tokens"] <= usage["prompt_tokens"]


def test_completions_text_and_token_prompts_agree(http: httpx.Client, live_server: Any) -> None:
    body = {"model": live_server.model, "max_tokens": 4, "temperature": 0, "logprobs": 2}
    by_text = http.post("/v1/completions", json=body | {"prompt": PROMPT}).json()
    assert by_text["object"] == "text_completion"
    (choice,) = by_text["choices"]
    logprobs = choice["logprobs"]
    assert len(logprobs["tokens"]) == by_text["usage"]["completion_tokens"] == len(logprobs["token_logprobs"])
    assert "".join(logprobs["tokens"]) == choice["text"]
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])
    assert logprobs["text_offset"][0] == 0
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(live_server.model))
    token_ids = list(tokenizer.encode(PROMPT, add_special_tokens=False))
    by_ids = http.post("/v1/completions", json=body | {"prompt": token_ids}).json()
    assert by_ids["choices"][0]["text"] == choice["text"]
    assert by_ids["usage"]["prompt_tokens"] == by_text["usage"]["prompt_tokens"] == len(token_ids)


def test_completions_stream_without_usage(http: httpx.Client, live_server: Any) -> None:
    body = {"model": live_server.model, "prompt": PROMPT, "max_tokens": 3, "stream": True}
    chunks, lines = read_sse(http, "/v1/completions", body)
    assert lines[-1] == "data: [DONE]"
    assert {chunk["object"] for chunk in chunks} == {"text_completion"}
    assert "".join(choice["text"] for chunk in chunks for choice in chunk["choices"])
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks][-1] in ("stop", "length")
    assert not any(chunk["usage"] for chunk in chunks)  # not asked for


def test_models_lists_the_served_model(http: httpx.Client, live_server: Any) -> None:
    listing = http.get("/v1/models").json()
    assert listing["object"] == "list"
    (model,) = listing["data"]
    assert (model["id"], model["object"], model["kind"]) == (live_server.model, "model", "generate")
    assert model["max_model_len"] == 8192


def test_ready_and_health(http: httpx.Client, live_server: Any) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").json() == {"status": "ready", "models": [live_server.model]}


def test_metrics_count_cache_tokens_and_requests(
    http: httpx.Client, live_server: Any, read_metric: Any
) -> None:
    requested = read_metric("ponder_cache_prompt_tokens_requested_total")
    reused = read_metric("ponder_cache_prompt_tokens_reused_total")
    served = read_metric("ponder_prompt_tokens_total", 0.0)  # absent until the first request
    body = {"model": live_server.model, "messages": HI, "max_tokens": 2, "temperature": 0}
    usage = http.post("/v1/chat/completions", json=body).json()["usage"]
    again = http.post("/v1/chat/completions", json=body).json()["usage"]
    num_prompt = usage["prompt_tokens"]
    assert read_metric("ponder_cache_prompt_tokens_requested_total") == requested + 2 * num_prompt
    # The second, identical prompt is served from the prefix cache.
    assert again["prompt_tokens_details"]["cached_tokens"] > 0
    assert (
        read_metric("ponder_cache_prompt_tokens_reused_total")
        >= reused + again["prompt_tokens_details"]["cached_tokens"]
    )
    assert read_metric("ponder_prompt_tokens_total") >= served + 2 * num_prompt
    for gauge in ("ponder_cache_live_nodes", "ponder_cache_cached_tokens", "ponder_cache_evictions_total"):
        assert read_metric(gauge) >= 0
    text = http.get("/metrics").text
    assert 'ponder_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}' in text
    assert "ponder_http_request_duration_seconds_bucket" in text


def test_an_unversioned_model_is_fingerprinted_by_its_id(http: httpx.Client, live_server: Any) -> None:
    """SmolLM2 ships as a GGUF package, not in the version store: its responses name the model."""
    body = {"model": live_server.model, "prompt": PROMPT, "max_tokens": 2}
    assert http.post("/v1/completions", json=body).json()["system_fingerprint"] == live_server.model
    listed = {model["id"]: model for model in http.get("/v1/models").json()["data"]}
    assert listed[live_server.model]["version"] is None
