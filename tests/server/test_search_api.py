"""Search through the real HTTP API: the `search` body field, `reasoning_effort`, streamed
reasoning, traces, and the 400s for bad knobs, on the bundled Countdown policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from bench.server_process import running_server
from engine.models import (
    BUNDLED_MODELS,
    COUNTDOWN_DEFAULT_PRM,
    COUNTDOWN_PRM_AGGREGATE,
    COUNTDOWN_REPLY_TOKENS,
    is_available,
    recommended_aggregate,
)

PRM_SERVED = is_available(COUNTDOWN_DEFAULT_PRM)
OTHER_PRM = "countdown-prm"
OTHER_SERVED = is_available(OTHER_PRM)
DEFAULT_AGGREGATE = recommended_aggregate(COUNTDOWN_DEFAULT_PRM)
BUDGET = 500  # enough for 2 beams x 2 expansions to reach the answer line
COUNTDOWN_TEMPERATURE = dict(BUNDLED_MODELS["countdown"].sampling)["temperature"]
PUZZLE = [{"role": "user", "content": "countdown target=93 numbers=4,7,25,50"}]
pytestmark = pytest.mark.skipif(not is_available("countdown"), reason="countdown weights absent")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("search_server")
    models = ",".join(["countdown"] + [COUNTDOWN_DEFAULT_PRM] * PRM_SERVED + [OTHER_PRM] * OTHER_SERVED)
    flags = {"--models": models, "--trace-db": folder / "traces.sqlite3", "--num-threads": 1}
    with running_server(flags, folder) as url:
        yield url


def chat(base_url: str, **body: Any) -> httpx.Response:
    payload = {"model": "countdown", "messages": PUZZLE, **body}
    return httpx.post(f"{base_url}/v1/chat/completions", json=payload, timeout=120)


@pytest.mark.parametrize("strategy", ["greedy", "best_of_n", "self_consistency", "beam"])
def test_openai_client_search_reply_budget_and_trace(base_url: str, strategy: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    search = {
        "strategy": strategy,
        "budget_tokens": BUDGET,
        "n": 3,
        "beam_width": 2,
        "expansions": 2,
        "prm": PRM_SERVED,
        "trace": True,
        "seed": 1,
    }
    reply = client.chat.completions.create(model="countdown", messages=PUZZLE, extra_body={"search": search})
    content = reply.choices[0].message.content or ""
    assert content.splitlines()[-1].startswith("answer:"), content
    summary = reply.model_extra["search"] if reply.model_extra else {}
    assert summary["strategy"] == strategy
    assert 0 < summary["tokens_generated"] <= BUDGET
    assert reply.usage is not None and reply.usage.completion_tokens == summary["tokens_generated"]
    trace = httpx.get(f"{base_url}/v1/traces/{summary['trace_id']}", timeout=30).json()
    assert trace["strategy"] == strategy and trace["tree"]["stats"]["num_tokens_generated"] <= BUDGET


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, COUNTDOWN_TEMPERATURE),  # the model's recommended temperature, not the generic 0.8
        ({"temperature": 0.7}, 0.7),  # the request's own temperature
        ({"temperature": 0.7, "search": {"strategy": "greedy", "temperature": 1.1}}, 1.1),
    ],
)
def test_search_samples_at_the_requests_then_the_models_temperature(
    base_url: str, body: dict[str, Any], expected: float
) -> None:
    body = {"search": {"strategy": "greedy", "prm": False}, **body}
    response = chat(base_url, **body)
    assert response.status_code == 200, response.text
    assert response.json()["search"]["temperature"] == expected


@pytest.mark.parametrize(("search", "expected"), [({}, DEFAULT_AGGREGATE), ({"aggregate": "last"}, "last")])
def test_steps_combine_by_the_prms_recommended_aggregation_unless_asked(
    base_url: str, search: dict[str, Any], expected: str
) -> None:
    response = chat(base_url, search={"strategy": "greedy", "prm": False, **search})
    assert response.status_code == 200, response.text
    assert response.json()["search"]["aggregate"] == expected


@pytest.mark.skipif(not (PRM_SERVED and OTHER_SERVED), reason="bundled PRMs absent")
@pytest.mark.parametrize(
    ("prm", "used", "aggregate"),
    [(True, COUNTDOWN_DEFAULT_PRM, DEFAULT_AGGREGATE), (OTHER_PRM, OTHER_PRM, COUNTDOWN_PRM_AGGREGATE)],
)
def test_search_prm_names_the_served_prm_and_its_aggregation_follows(
    base_url: str, prm: bool | str, used: str, aggregate: str
) -> None:
    search = {"strategy": "best_of_n", "budget_tokens": 240, "n": 2, "prm": prm}
    response = chat(base_url, search=search)
    assert response.status_code == 200, response.text
    summary = response.json()["search"]
    assert (summary["prm"], summary["aggregate"]) == (used, aggregate)
    assert summary["prm_calls"] >= 1 and all(0 < s <= 1 for s in summary["step_scores"])


@pytest.mark.parametrize(("prm", "code"), [("no-such-prm", "model_not_found"), ("", "invalid_value")])
def test_an_unserved_or_empty_prm_is_a_400_naming_search_prm(base_url: str, prm: str, code: str) -> None:
    response = chat(base_url, search={"strategy": "best_of_n", "budget_tokens": 240, "prm": prm})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("search.prm", code)


@pytest.mark.parametrize("budget", [240, 480])
def test_unset_widths_are_sized_to_the_budget_and_the_models_reply_length(base_url: str, budget: int) -> None:
    search = {"strategy": "best_of_n", "budget_tokens": budget, "prm": False, "trace": True}
    summary = chat(base_url, search=search).json()["search"]
    trace = httpx.get(f"{base_url}/v1/traces/{summary['trace_id']}", timeout=30).json()
    samples = trace["tree"]["tree"]["root"]["children"]
    assert len(samples) == budget // COUNTDOWN_REPLY_TOKENS


def test_tree_search_reuses_cached_prefixes(base_url: str) -> None:
    body = chat(base_url, search={"strategy": "beam", "budget_tokens": 400, "prm": PRM_SERVED}).json()
    assert body["search"]["prompt_tokens_reused"] > body["search"]["prompt_tokens_computed"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"search": {"strategy": "telepathy"}}, "search.strategy"),
        ({"search": {"budget_tokens": 10**6}}, "search.budget_tokens"),
        ({"search": {"aggregate": "median"}}, "search.aggregate"),
        ({"search": {"beam_width": 0}}, "search.beam_width"),
        ({"search": {"colour": "blue"}}, "search.colour"),
        ({"search": {"task": "chess"}}, "search.task"),
        (
            {"search": {"strategy": "greedy"}, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"search": {"strategy": "greedy", "prm": False}, "n": 2}, "n"),
    ],
)
def test_bad_search_knobs_are_400_naming_the_param(base_url: str, body: dict[str, Any], param: str) -> None:
    response = chat(base_url, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_unknown_strategy_lists_the_valid_ones(base_url: str) -> None:
    message = chat(base_url, search={"strategy": "telepathy"}).json()["error"]["message"]
    assert all(name in message for name in ("greedy", "beam", "mcts", "dvts", "revise"))


def test_verifier_needs_a_puzzle(base_url: str) -> None:
    body = {"messages": [{"role": "user", "content": "hello"}], "search": {"verifier": True, "prm": False}}
    response = chat(base_url, **body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "search.verifier"


def test_reasoning_effort_picks_a_search_guided_by_the_paired_prm_where_served(base_url: str) -> None:
    response = chat(base_url, reasoning_effort="low")
    assert response.status_code == 200 and response.json()["search"]["strategy"] == "best_of_n"
    assert response.json()["search"]["prm"] == (COUNTDOWN_DEFAULT_PRM if PRM_SERVED else None)


def test_streaming_shows_reasoning_then_answer(base_url: str) -> None:
    payload = {
        "model": "countdown",
        "messages": PUZZLE,
        "stream": True,
        "search": {"strategy": "beam", "budget_tokens": 300, "prm": PRM_SERVED},
    }
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=payload, timeout=120) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    kinds = [next(iter(k for k in c["choices"][0]["delta"] if k != "role"), None) for c in chunks]
    assert "reasoning_content" in kinds and "content" in kinds
    assert kinds.index("reasoning_content") < len(kinds) - 1 - kinds[::-1].index("content")
    assert chunks[-1]["search"]["tokens_generated"] <= 300


def test_unknown_trace_is_404(base_url: str) -> None:
    response = httpx.get(f"{base_url}/v1/traces/trace-nope", timeout=30)
    assert response.status_code == 404 and response.json()["error"]["code"] == "trace_not_found"


def test_plain_chat_has_no_search_object(base_url: str) -> None:
    body = chat(base_url, max_tokens=80, temperature=0).json()
    assert "search" not in body and "answer:" in body["choices"][0]["message"]["content"]
