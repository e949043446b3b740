"""The `ponder` CLI against the live server: in-process for speed, once as the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clients.cli import main


def test_chat_prints_the_answer(live_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--base-url", live_server.base_url, "--api-key", live_server.api_key]
    assert main([*argv, "chat", "Name a color.", "--max-tokens", "4", "--temperature", "0"]) == 0
    answer = capsys.readouterr().out.strip()
    assert answer
    assert main([*argv, "chat", "Name a color.", "--max-tokens", "4", "--temperature", "0", "--stream"]) == 0
    assert capsys.readouterr().out.strip() == answer  # greedy: streaming prints the same text


def test_env_supplies_url_and_key(
    live_server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PONDER_BASE_URL", live_server.base_url)
    monkeypatch.setenv("PONDER_API_KEY", live_server.api_key)
    assert main(["models"]) == 0
    assert capsys.readouterr().out.split("\t")[:2] == [live_server.model, "generate"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-key", "sk-wrong", "models"], "401"),
        (["chat", "Hi", "--model", "gpt-4o"], "404"),
    ],
)
def test_refusals_exit_1(
    live_server: Any, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = ["--base-url", live_server.base_url, "--api-key", live_server.api_key]
    assert main([*base, *argv]) == 1
    assert message in capsys.readouterr().err


def test_unreachable_server_exits_1(free_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base-url", f"http://127.0.0.1:{free_port}", "models"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_console_script_is_installed(live_server: Any) -> None:
    script = Path(sys.executable).parent / "ponder"
    env = os.environ | {"PONDER_API_KEY": live_server.api_key}
    done = subprocess.run(
        [str(script), "--base-url", live_server.base_url, "models"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert live_server.model in done.stdout
