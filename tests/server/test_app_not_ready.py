"""The real app before its engines start (httpx's ASGI transport runs no lifespan).

This is the window in which a deployment probes /ready and clients may already send requests;
it also covers routing decisions that need no model: 404, the reward-model 400, and the 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from server.app import build_app, build_state
from server.model_pool import ServePlan
from server.settings import ServerSettings

GENERATE_ID = "smollm2-135m-instruct"
REWARD_ID = "countdown-prm"
KEY = "sk-unit"


def request(method: str, path: str, body: Any = None, key: str | None = KEY) -> httpx.Response:
    # A reward model is listed without its weights: the plan is built by hand, nothing is loaded.
    state = build_state(ServerSettings(api_key=KEY), ServePlan((GENERATE_ID,), (REWARD_ID,)))
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, path, json=body, headers=headers)

    return asyncio.run(send())


def chat_body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param", "code"),
    [
        ("GET", "/ready", None, 503, None, "not_ready"),
        ("POST", "/v1/chat/completions", chat_body(GENERATE_ID), 503, "model", "model_not_ready"),
        ("POST", "/v1/completions", {"model": GENERATE_ID, "prompt": "x"}, 503, "model", "model_not_ready"),
        ("POST", "/v1/chat/completions", chat_body(REWARD_ID), 400, "model", "model_not_generative"),
        ("POST", "/v1/chat/completions", chat_body("gpt-4o"), 404, "model", "model_not_found"),
        (
            "POST",
            "/v1/chat/completions",
            {"model": GENERATE_ID},
            400,
            "messages",
            "missing_required_parameter",
        ),
        ("GET", "/v1/nothing", None, 404, None, None),
    ],
)
def test_error_envelopes_before_ready(
    method: str, path: str, body: Any, status: int, param: str | None, code: str | None
) -> None:
    response = request(method, path, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"]) == (param, code)


def test_reward_model_message_says_why() -> None:
    message = request("POST", "/v1/chat/completions", chat_body(REWARD_ID)).json()["error"]["message"]
    assert "reward model" in message and REWARD_ID in message


def test_health_is_live_while_loading() -> None:
    response = request("GET", "/health", key=None)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_models_lists_both_kinds_before_ready() -> None:
    listed = {model["id"]: model for model in request("GET", "/v1/models").json()["data"]}
    assert listed[GENERATE_ID]["kind"] == "generate"
    assert listed[REWARD_ID]["kind"] == "reward"
    assert listed[GENERATE_ID]["max_model_len"] is None  # unknown until the engine has started


def test_auth_comes_before_everything_else() -> None:
    response = request("POST", "/v1/chat/completions", {"not": "checked"}, key="sk-wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"
