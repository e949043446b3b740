"""The operator's models at start-up: a bad file stops the server naming it; a TOML config serves
several models, each with its own sampling temperature, task and context cap."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.models import resolve_model_dir
from server.__main__ import main
from tests.conftest import (
    REPO_ROOT,
    find_free_port,
    start_server_process,
    stop_server_process,
    wait_until_ready,
)

SMOLLM2 = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]


def linked_copy(source: Path, target: Path, leave_out: str = "") -> Path:
    """`source`'s files as symlinks in `target` (no 500 MB copy), without `leave_out`."""
    target.mkdir()
    for file in source.iterdir():
        if file.name != leave_out:
            (target / file.name).symlink_to(file)
    return target


def without(name: str) -> Callable[[Path], Path]:
    return lambda tmp: linked_copy(resolve_model_dir(SMOLLM2), tmp / "model", leave_out=name)


def broken_tokenizer(tmp: Path) -> Path:
    folder = linked_copy(resolve_model_dir(SMOLLM2), tmp / "model", leave_out="tokenizer.json")
    (folder / "tokenizer.json").write_text("{not json")
    return folder


def test_a_folder_without_safetensors_exits_non_zero_naming_the_file(tmp_path: Path) -> None:
    folder = without("model.safetensors")(tmp_path)
    command = [sys.executable, "-m", "server", "--model", str(folder), "--port", str(find_free_port())]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert str(folder / "model.safetensors") in done.stderr


@pytest.mark.parametrize(
    ("make", "flag", "named"),
    [
        (without("config.json"), "--model", "config.json"),
        (without("model.safetensors"), "--prm", "model.safetensors"),
        (broken_tokenizer, "--model", "tokenizer.json"),
        (lambda tmp: tmp / "absent.gguf", "--model", "absent.gguf"),
        (lambda tmp: resolve_model_dir(SMOLLM2), "--prm", "cannot tell the PRM style"),
    ],
)
def test_bad_files_stop_the_start_with_their_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], flag: str, named: str
) -> None:
    path = make(tmp_path)
    policy = ["--model", f"{resolve_model_dir(SMOLLM2)}=policy"] if flag == "--prm" else []
    assert main([*policy, flag, str(path), "--trace-db", str(tmp_path / "t.sqlite3")]) == 2
    error = capsys.readouterr().err
    assert named in error and "cannot serve" in error


CONFIG = """
[[models]]
name = "smol-cool"
path = "{folder}"
temperature = 0.1
task = "plain"

[[models]]
name = "smol-math"
path = "{folder}"
temperature = 0.6
task = "math"
max_context = 512
"""


@pytest.fixture(scope="module")
def config_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("config_server")
    config = folder / "models.toml"
    config.write_text(CONFIG.format(folder=resolve_model_dir(SMOLLM2)))
    port = find_free_port()
    flags = {
        "--port": port,
        "--config": config,
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


@pytest.mark.parametrize(
    ("model", "temperature", "task"), [("smol-cool", 0.1, "plain"), ("smol-math", 0.6, "math")]
)
def test_each_configured_model_searches_with_its_own_settings(
    config_server: str, model: str, temperature: float, task: str
) -> None:
    search: dict[str, Any] = {"strategy": "greedy", "prm": False, "budget_tokens": 16}
    body = {"model": model, "messages": QUESTION, "max_tokens": 16, "search": search}
    response = httpx.post(f"{config_server}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    summary = response.json()["search"]
    assert (summary["temperature"], summary["task"]) == (temperature, task)


def test_the_configured_context_cap_is_served(config_server: str) -> None:
    listed = {m["id"]: m for m in httpx.get(f"{config_server}/v1/models", timeout=10).json()["data"]}
    assert set(listed) == {"smol-cool", "smol-math"}
    assert listed["smol-math"]["max_model_len"] == 512
    assert listed["smol-cool"]["max_model_len"] > 512  # SmolLM2's own context
