"""A real server of the operator's own files: `--model <SmolLM2 folder> --prm <tiny PRM folder>`.

It chats, searches guided by the PRM, and scores replies through /v1/score; the scores are
checked against the same PRM loaded directly, so the endpoint cannot pass by returning noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.models import resolve_model_dir
from rewards.aggregation import aggregate
from rewards.prm import load_prm
from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

API_KEY = "sk-own-models"
POLICY = "my-smol"
PRM = "tiny-prm"
QUESTION = "What is 2 + 3?"
REPLIES = ["2 + 3 = 5.\n\nSo the answer is 5.", "2 + 3 = 6.\n\nThe answer is 6.\n\nDone."]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_prm: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("own_models")
    port = find_free_port()
    flags: dict[str, object] = {
        "--port": port,
        "--model": f"{resolve_model_dir('smollm2-135m-instruct')}={POLICY}",
        "--prm": f"{tiny_qwen_prm}={PRM}",
        "--api-key": API_KEY,
        "--trace-db": folder / "traces.sqlite3",
        "--model-store": folder / "versions",
        "--num-threads": 1,
    }
    log = folder / "server.log"
    process = start_server_process(flags, log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server_process(process)


def post(base_url: str, path: str, body: dict[str, Any], key: str | None = API_KEY) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{base_url}{path}", json=body, headers=headers, timeout=120)


def test_serves_only_the_given_models(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY)
    listed = {m.id: (m.model_extra or {}).get("kind") for m in client.models.list()}
    assert set(listed) == {POLICY, PRM}
    assert listed[PRM] == "reward"


def test_chats_with_the_folder_model(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY)
    reply = client.chat.completions.create(
        model=POLICY, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0
    )
    assert reply.model == POLICY
    assert reply.choices[0].message.content
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 8


def test_beam_search_is_guided_by_the_named_prm(base_url: str) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY)
    search = {"strategy": "beam", "prm": PRM, "beam_width": 2, "expansions": 2, "budget_tokens": 96}
    reply = client.chat.completions.create(
        model=POLICY,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=32,
        extra_body={"search": {**search, "max_step_tokens": 16, "seed": 1}},
    )
    summary = (reply.model_extra or {})["search"]
    assert summary["prm"] == PRM
    assert summary["prm_calls"] > 0
    assert summary["step_scores"] and all(0.0 < s < 1.0 for s in summary["step_scores"])


def test_a_single_prm_guides_the_model_by_default(base_url: str) -> None:
    body = {
        "model": POLICY,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 16,
        "search": {"strategy": "best_of_n", "n": 2, "budget_tokens": 32, "seed": 2},
    }
    response = post(base_url, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    assert response.json()["search"]["prm"] == PRM


def test_score_returns_the_prms_step_scores_and_aggregate(base_url: str, tiny_qwen_prm: Path) -> None:
    body = {"model": PRM, "prompt": QUESTION, "replies": [*REPLIES, ["one step", "two"]], "aggregate": "min"}
    response = post(base_url, "/v1/score", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["object"], result["model"], result["aggregate"], result["task"]) == (
        "list",
        PRM,
        "min",
        "plain",
    )
    prm = load_prm(tiny_qwen_prm)
    expected_steps = [["2 + 3 = 5.", "So the answer is 5."], ["2 + 3 = 6.", "The answer is 6.", "Done."]]
    for index, item in enumerate(result["data"]):
        steps = [*expected_steps, ["one step", "two"]][index]
        assert (item["index"], item["object"], item["steps"]) == (index, "score", steps)
        assert item["step_scores"] == pytest.approx(prm.score_steps(QUESTION, steps), abs=1e-5)
        assert item["score"] == pytest.approx(aggregate(item["step_scores"], "min"))


def test_score_reads_the_question_from_messages(base_url: str) -> None:
    by_prompt = post(base_url, "/v1/score", {"model": PRM, "prompt": QUESTION, "replies": REPLIES[:1]})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    by_messages = post(base_url, "/v1/score", {"model": PRM, "messages": messages, "replies": REPLIES[:1]})
    assert by_messages.status_code == 200, by_messages.text
    assert by_messages.json()["data"] == by_prompt.json()["data"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "nope", "prompt": QUESTION, "replies": ["a"]}, 404, "model_not_found"),
        ({"model": POLICY, "prompt": QUESTION, "replies": ["a"]}, 400, "model_not_prm"),
        ({"model": PRM, "prompt": QUESTION}, 400, "missing_required_parameter"),
        ({"model": PRM, "replies": ["a"]}, 400, "invalid_value"),
        ({"model": PRM, "prompt": QUESTION, "replies": ["a"], "aggregate": "max"}, 400, "invalid_value"),
    ],
)
def test_score_errors_are_openai_envelopes(
    base_url: str, body: dict[str, Any], status: int, code: str
) -> None:
    response = post(base_url, "/v1/score", body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_score_needs_the_api_key_and_is_in_openapi(base_url: str) -> None:
    response = post(base_url, "/v1/score", {"model": PRM, "prompt": QUESTION, "replies": ["a"]}, key=None)
    assert response.status_code == 401
    headers = {"Authorization": f"Bearer {API_KEY}"}
    schema = httpx.get(f"{base_url}/openapi.json", headers=headers, timeout=10).json()
    assert "post" in schema["paths"]["/v1/score"]
    assert "ScoreRequest" in schema["components"]["schemas"]
