"""`clients.client.PonderClient` against the live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clients.client import PonderAPIError, PonderClient, to_messages


@pytest.fixture
def client(live_server: Any) -> Iterator[PonderClient]:
    with PonderClient(live_server.base_url, live_server.api_key, timeout_s=120.0) as ponder:
        yield ponder


def test_models_and_default_model(client: PonderClient, live_server: Any) -> None:
    assert [model["id"] for model in client.models()] == [live_server.model]
    assert client.default_model() == live_server.model


def test_chat_n_choices_and_usage(client: PonderClient) -> None:
    result = client.chat("Name a fruit.", max_tokens=3, n=2, temperature=1.0, seed=5)
    assert len(result.texts) == len(result.finish_reasons) == 2
    assert all(reason in ("stop", "length") for reason in result.finish_reasons)
    assert 0 < result.usage.completion_tokens <= 2 * 3
    assert result.usage.prompt_tokens > 0
    assert result.text == result.texts[0]


def test_stream_chat_matches_chat(client: PonderClient) -> None:
    question = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a fruit."},
    ]
    whole = client.chat(question, max_tokens=4, temperature=0).text
    assert "".join(client.stream_chat(question, max_tokens=4, temperature=0)) == whole


def test_search_field_reaches_the_search(client: PonderClient) -> None:
    search = {"strategy": "greedy", "prm": False, "budget_tokens": 6}
    result = client.chat("Hi", search=search)
    assert result.search is not None and result.search["strategy"] == "greedy"
    assert 0 < result.search["tokens_generated"] <= 6 and len(result.texts) == 1


def test_bad_search_knob_is_an_api_error(client: PonderClient) -> None:
    with pytest.raises(PonderAPIError) as caught:
        client.chat("Hi", search={"strategy": "beam", "width": 2})
    assert caught.value.status == 400 and caught.value.param == "search.width"  # the unknown knob, named


@pytest.mark.parametrize(
    ("api_key", "model", "params", "status", "param"),
    [
        ("sk-wrong", None, {}, 401, None),
        (None, "gpt-4o", {}, 404, "model"),
        (None, None, {"temperature": -1}, 400, "temperature"),
    ],
)
def test_errors_become_ponder_api_errors(
    live_server: Any,
    api_key: str | None,
    model: str | None,
    params: dict[str, Any],
    status: int,
    param: str | None,
) -> None:
    with PonderClient(live_server.base_url, api_key or live_server.api_key) as ponder:
        with pytest.raises(PonderAPIError) as raised:
            ponder.chat("Hi", model=model or live_server.model, max_tokens=1, **params)
        assert (raised.value.status, raised.value.param) == (status, param)
        with pytest.raises(PonderAPIError) as raised_streaming:
            list(ponder.stream_chat("Hi", model=model or live_server.model, max_tokens=1, **params))
        assert raised_streaming.value.status == status


def test_to_messages() -> None:
    assert to_messages("q") == [{"role": "user", "content": "q"}]
    conversation = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    assert to_messages(conversation) == conversation
