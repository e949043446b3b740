"""Every OpenAI chat parameter on a search request is honoured or refused with a 400 naming it;
and search works on every generative model, with or without a PRM, through its task.

The server serves `countdown` without its PRM and SmolLM2 (no PRM at all), so searches fall back
to the policy's own step probability.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bench.server_process import running_server
from engine.models import is_available
from server.protocol import ChatCompletionRequest

SMOLLM2 = "smollm2-135m-instruct"
PUZZLE = [{"role": "user", "content": "countdown target=93 numbers=4,7,25,50"}]
SEARCH = {"strategy": "best_of_n", "budget_tokens": 200, "n": 2, "trace": True, "seed": 1}
UNSEEDED = {knob: value for knob, value in SEARCH.items() if knob != "seed"}
pytestmark = pytest.mark.skipif(
    not (is_available("countdown") and is_available(SMOLLM2)), reason="countdown or SmolLM2 absent"
)
Check = Callable[[str, httpx.Response], None]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("search_params")
    models = f"countdown,{SMOLLM2}"
    flags = {"--models": models, "--trace-db": folder / "traces.sqlite3", "--num-threads": 1}
    with running_server(flags, folder) as url:
        yield url


def chat(base_url: str, **body: Any) -> httpx.Response:
    payload = {"model": "countdown", "messages": PUZZLE, "search": SEARCH, **body}
    return httpx.post(f"{base_url}/v1/chat/completions", json=payload, timeout=180)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def settings(base_url: str, response: httpx.Response) -> dict[str, Any]:
    trace_id = ok(response)["search"]["trace_id"]
    return httpx.get(f"{base_url}/v1/traces/{trace_id}", timeout=30).json()["settings"]


def setting(name: str, expected: object) -> Check:
    return lambda url, response: _equal(settings(url, response)[name], expected)


def _equal(value: object, expected: object) -> None:
    assert value == expected


def answered(check: Callable[[dict[str, Any]], bool]) -> Check:
    def run(url: str, response: httpx.Response) -> None:
        body = ok(response)
        assert check(body), body

    return run


def reply_of(body: dict[str, Any]) -> str:
    return body["choices"][0]["message"]["content"]


def capped(url: str, response: httpx.Response) -> None:
    body, used = ok(response), settings(url, response)
    assert used["max_reply_tokens"] == 20
    assert body["choices"][0]["finish_reason"] == "length"  # a whole reply runs ~65 tokens


def streamed(url: str, response: httpx.Response) -> None:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    last = json.loads(events[-2].removeprefix("data: "))
    assert events[-1] == "data: [DONE]" and last["usage"]["completion_tokens"] > 0


def with_logprobs(url: str, response: httpx.Response) -> None:
    content = ok(response)["choices"][0]["logprobs"]["content"]
    assert content and all(item["logprob"] <= 0 and len(item["top_logprobs"]) == 2 for item in content)


def salted(url: str, response: httpx.Response) -> None:
    """The salt namespaces the prefix cache: the same seeded search again under the same salt
    reuses what the first one computed; under a salt never seen, it reuses less."""
    again = ok(chat(url, cache_salt="tenant-a", search=SEARCH))["search"]["prompt_tokens_reused"]
    fresh = ok(chat(url, cache_salt="tenant-b", search=SEARCH))["search"]["prompt_tokens_reused"]
    assert ok(response)["search"]["prompt_tokens_reused"] < again and fresh < again


REFUSED = None
# parameter -> (the request's extra fields, how it is honoured; REFUSED: a 400 naming it)
CASES: dict[str, tuple[dict[str, Any], Check | None]] = {
    "model": ({}, answered(lambda body: body["model"] == "countdown")),
    "messages": ({}, answered(lambda body: body["search"]["is_verified"] in (True, False))),
    "temperature": ({"temperature": 0.9}, setting("temperature", 0.9)),
    "top_p": ({"top_p": 0.5}, setting("top_p", 0.5)),
    "top_k": ({"top_k": 5}, setting("top_k", 5)),
    "max_tokens": ({"max_tokens": 20}, capped),
    "max_completion_tokens": ({"max_completion_tokens": 20, "max_tokens": 500}, capped),
    "n": ({"n": 2}, REFUSED),
    "stop": (
        {"stop": ["answer"]},
        answered(lambda body: "answer" not in body["choices"][0]["message"]["content"]),
    ),
    "seed": ({"seed": 42, "search": {**SEARCH, "seed": None}}, setting("seed", 42)),
    "stream": ({"stream": True, "stream_options": {"include_usage": True}}, streamed),
    "stream_options": ({"stream_options": {"include_usage": True}}, REFUSED),  # without stream
    "user": ({"user": "alice"}, answered(lambda body: bool(body["choices"]))),
    "presence_penalty": ({"presence_penalty": 0.5}, REFUSED),
    "frequency_penalty": ({"frequency_penalty": 0.5}, REFUSED),
    "ignore_eos": ({"ignore_eos": True}, REFUSED),
    "search": (
        {"search": {**SEARCH, "strategy": "greedy"}},
        answered(lambda b: b["search"]["strategy"] == "greedy"),
    ),
    "reasoning_effort": (
        {"reasoning_effort": "low", "search": None},
        answered(lambda body: body["search"]["strategy"] == "best_of_n"),
    ),
    "logprobs": ({"logprobs": True, "top_logprobs": 2}, with_logprobs),
    "top_logprobs": ({"top_logprobs": 2}, REFUSED),  # without logprobs
    "cache_salt": ({"cache_salt": "tenant-a"}, salted),
}


def test_every_chat_parameter_has_a_case() -> None:
    assert set(CASES) == set(ChatCompletionRequest.model_fields)


@pytest.mark.parametrize("param", sorted(CASES))
def test_each_parameter_is_honoured_or_refused_by_name(base_url: str, param: str) -> None:
    extra, check = CASES[param]
    response = chat(base_url, **extra)
    if check is REFUSED:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
    else:
        check(base_url, response)


def test_seed_makes_the_search_repeat_itself(base_url: str) -> None:
    replies = [ok(chat(base_url, seed=7, temperature=1.0, search=UNSEEDED)) for _ in range(2)]
    assert replies[0]["choices"][0]["message"] == replies[1]["choices"][0]["message"]
    assert replies[0]["search"]["tokens_generated"] == replies[1]["search"]["tokens_generated"]


@pytest.mark.parametrize("model", ["countdown", SMOLLM2])
def test_reasoning_effort_searches_without_a_prm(base_url: str, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Name a colour."}]}
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={**body, "reasoning_effort": "low", "max_tokens": 48},
        timeout=300,
    )
    summary = ok(response)["search"]
    assert (summary["strategy"], summary["prm"], summary["prm_calls"]) == ("best_of_n", None, 0)
    assert summary["task"] == ("countdown" if model == "countdown" else "plain")


def test_a_chat_model_steps_by_paragraphs_and_may_take_another_task(base_url: str) -> None:
    search = {"strategy": "beam", "budget_tokens": 200, "max_step_tokens": 48, "trace": True, "seed": 3}
    question = "Write a numbered list of three fruits."
    messages = [{"role": "user", "content": question}]
    payload = {"model": SMOLLM2, "messages": messages, "max_tokens": 64}
    plain = ok(httpx.post(f"{base_url}/v1/chat/completions", json={**payload, "search": search}, timeout=300))
    tree = httpx.get(f"{base_url}/v1/traces/{plain['search']['trace_id']}", timeout=30).json()["tree"]["tree"]
    texts, stack = [], [tree["root"]]
    while stack:
        node = stack.pop()
        texts.append(node["text"])
        stack.extend(node["children"])
    assert plain["search"]["task"] == "plain" and not any("\n\n" in text for text in texts)
    assert any("\n" in text for text in texts), texts  # a step is a paragraph, not a line
    as_math = {**payload, "search": {"strategy": "greedy", "task": "math"}}
    math = ok(httpx.post(f"{base_url}/v1/chat/completions", json=as_math, timeout=300))
    assert math["search"]["task"] == "math"


def test_an_unknown_task_is_a_400_naming_search_task(base_url: str) -> None:
    response = chat(base_url, search={**SEARCH, "task": "chess"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "search.task"
    assert "countdown, math, plain" in response.json()["error"]["message"]


def test_search_on_legacy_completions_is_refused(base_url: str) -> None:
    body = {"model": "countdown", "prompt": "countdown target=93 numbers=4,7,25,50", "search": SEARCH}
    response = httpx.post(f"{base_url}/v1/completions", json=body, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["param"] == "search"
