"""The prefix cache is namespaced per API key: `usage.prompt_tokens_details.cached_tokens` must not
tell one key what another key's prompts begin with. A request's `cache_salt` (as in vLLM) narrows
the namespace further; `share_prefix_cache_across_keys` opts in to sharing between keys.

Real servers with an API key and an admin key (two owners), the real SmolLM2 engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

MODEL = "smollm2-135m-instruct"
USER_KEY, ADMIN_KEY = "sk-user", "sk-admin"
# A long, distinctive system prompt: what the first key's prompts begin with.
SECRET_PREFIX = "You are the assistant of Project Bluebird. Its launch code is 4471. " * 4


def start(tmp_path: Path, *, is_shared: bool) -> tuple[object, str]:
    port = find_free_port()
    flags: dict[str, object] = {"--port": port, "--models": MODEL, "--api-key": USER_KEY}
    flags["--admin-key"] = ADMIN_KEY
    if is_shared:
        flags["--share-prefix-cache-across-keys"] = "true"
    log_path = tmp_path / "server.log"
    process = start_server_process(flags, log_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log_path)
    except BaseException:
        stop_server_process(process)
        raise
    return process, base_url


@pytest.fixture(scope="module", params=[False, True], ids=["per-key", "shared"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, bool]]:
    process, base_url = start(tmp_path_factory.mktemp("salt"), is_shared=request.param)
    try:
        yield base_url, request.param
    finally:
        stop_server_process(process)  # type: ignore[arg-type]


def cached_tokens(base_url: str, key: str, question: str, **fields: object) -> int:
    messages = [{"role": "system", "content": SECRET_PREFIX}, {"role": "user", "content": question}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 1, "temperature": 0} | fields
    response = httpx.post(
        f"{base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120
    )
    assert response.status_code == 200, response.text
    return int(response.json()["usage"]["prompt_tokens_details"]["cached_tokens"])


def test_a_second_key_does_not_see_the_first_keys_prefix(server: tuple[str, bool]) -> None:
    base_url, is_shared = server
    cached_tokens(base_url, USER_KEY, "What is the code?")
    assert cached_tokens(base_url, USER_KEY, "Who are you?") > 50  # the same key reuses its prefix
    other_key = cached_tokens(base_url, ADMIN_KEY, "Tell me more.")
    assert (other_key > 50) if is_shared else (other_key == 0)


def test_cache_salt_separates_requests_of_one_key(server: tuple[str, bool]) -> None:
    base_url, _ = server
    cached_tokens(base_url, USER_KEY, "First question.", cache_salt="tenant-a")
    assert cached_tokens(base_url, USER_KEY, "Second question.", cache_salt="tenant-a") > 50
    assert cached_tokens(base_url, USER_KEY, "Third question.", cache_salt="tenant-b") == 0
