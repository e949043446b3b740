"""Settings from env and CLI flags, and the choice of models to serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.models import BUNDLED_MODELS, is_available
from server.__main__ import main, settings_from_args
from server.model_pool import plan_models
from server.settings import ServerSettings


def test_cli_flags_override_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_PORT", "9001")
    monkeypatch.setenv("PONDER_MAX_N", "3")
    settings = settings_from_args(
        ["--port", "9002", "--models", "a, b", "--api-key", "sk-hidden", "--max-tokens", "64"]
    )
    assert (settings.port, settings.max_n, settings.max_tokens) == (9002, 3, 64)
    assert settings.models == ["a", "b"]
    assert settings.api_key_value() == "sk-hidden"
    assert "sk-hidden" not in repr(settings)  # the key is a SecretStr


def test_env_models_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_MODELS", "smollm2-135m-instruct,countdown")
    assert ServerSettings().models == ["smollm2-135m-instruct", "countdown"]


def test_defaults() -> None:
    settings = ServerSettings()
    assert (settings.host, settings.port, settings.engine, settings.models) == (
        "127.0.0.1",
        8000,
        "embedded",
        [],
    )
    assert settings.api_key is None
    assert (settings.record_traces, settings.trace_retention_days, settings.trace_max_mb) == (
        "opt-in",
        30,
        1024,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--engine", "tensorrt"],
        ["--port", "0"],
        ["--max-n", "0"],
        ["--request-timeout-s", "-1"],
        ["--port", "x"],
        ["--record-traces", "sometimes"],
        ["--trace-retention-days", "0"],
        ["--trace-max-mb", "0"],
    ],
)
def test_bad_settings_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_unknown_model_exits_2_listing_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--models", "gpt-4o"]) == 2
    assert "smollm2-135m-instruct" in capsys.readouterr().err


def test_plan_default_serves_every_available_model_by_kind() -> None:
    plan = plan_models([])
    expected = [model_id for model_id in BUNDLED_MODELS if is_available(model_id)]
    assert sorted(plan.model_ids) == sorted(expected)
    assert "smollm2-135m-instruct" in plan.generate_ids
    assert all(BUNDLED_MODELS[model_id].kind == "reward" for model_id in plan.reward_ids)


@pytest.mark.parametrize("models", [["nope"], ["smollm2-135m-instruct", "nope"]])
def test_plan_rejects_unknown_models(models: list[str]) -> None:
    with pytest.raises(ValueError, match="known models"):
        plan_models(models)


def test_plan_explicit_dedupes() -> None:
    plan = plan_models(["smollm2-135m-instruct", "smollm2-135m-instruct"])
    assert plan.generate_ids == ("smollm2-135m-instruct",)


def test_engine_start_failure_exits_1(
    server_process_starter: Any, free_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine that cannot start stops the server (exit 1) instead of leaving it forever unready."""
    log_path = tmp_path / "server.log"
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("")  # SmolLM2's converted folder cannot be made under a file
    monkeypatch.setenv("PONDER_CACHE_DIR", str(not_a_folder))
    flags = {"--port": free_port, "--engine": "embedded", "--models": "smollm2-135m-instruct"}
    process = server_process_starter(flags, log_path)
    try:
        assert process.wait(timeout=120) == 1
    finally:
        process.kill()
    assert "failed to start" in log_path.read_text()
