"""The OpenAPI document matches the server: schemathesis fuzzes a live server from /openapi.json.

A real `python -m server` (the bundled Countdown policy and its PRM, with an API key) is fuzzed
by the schemathesis CLI for a fixed time: every documented operation, valid and invalid bodies,
undocumented methods and missing credentials. The test fails on any 5xx, any status, content
type, header or body the document does not declare, a schema-invalid request the server accepts,
a 405 without its `Allow`, or a route that ignores the key. Not checked: that every schema-valid
request is accepted (`positive_data_acceptance`): the server's own limits (`--max-tokens`,
`--max-n`, the model's context) and opaque trace cursors refuse valid-looking values by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.server_process import running_server
from server.openapi import ERROR_SCHEMA_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-schemathesis"
FUZZ_SECONDS = 40  # the fuzzing budget (3,755 cases in 60 s on a busy machine); ~1 min with the start
HOOKS_MODULE = "tests.server.schemathesis_hooks"  # points generated requests at served models
SEED = 3  # a fixed seed: the run is reproducible, and a failure replays with `st replay`
SERVER_FLAGS: dict[str, object] = {
    "--models": "countdown,countdown-checker",
    "--api-key": API_KEY,
    "--watch-interval-s": 0,
    "--num-threads": 1,
    # Small limits keep each generated request short: longer ones are refused with 400, and a
    # search that still runs long ends at the request timeout with a (documented) 504.
    "--max-tokens": 16,
    "--max-n": 2,
    "--request-timeout-s": 10,
    "--search-max-budget-tokens": 128,  # a search within the timeout even on a busy machine
}


def server_flags(folder: Path) -> dict[str, object]:
    return {**SERVER_FLAGS, "--trace-db": folder / "traces.sqlite3", "--model-store": folder / "versions"}


def schemathesis_command(base_url: str, report_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-time",
        str(FUZZ_SECONDS),
        # One worker: hypothesis parses lambdas' source with `ast`, whose recursion bookkeeping
        # CPython 3.11 keeps per interpreter, not per thread; two workers parsing at once make it
        # raise "AST constructor recursion depth mismatch" inside schemathesis (cpython#106905).
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--seed",
        str(SEED),
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
    ]


@pytest.mark.slow
def test_schemathesis_finds_no_mismatch_and_no_server_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks",
        "PYTHONPATH": str(REPO_ROOT),
    }
    with running_server(server_flags(tmp_path), tmp_path) as base_url:
        run = subprocess.run(
            schemathesis_command(base_url, tmp_path / "report"),
            cwd=tmp_path,  # schemathesis keeps its example database in ./.schemathesis
            env=env,
            capture_output=True,
            text=True,
            timeout=FUZZ_SECONDS + 120,
        )
    output = (run.stdout + run.stderr)[-12_000:]
    reports = sorted((tmp_path / "report").glob("*.json"))
    assert reports, f"schemathesis wrote no report (exit {run.returncode}):\n{output}"
    report = json.loads(reports[-1].read_text())
    print(f"schemathesis generated {report['test_cases']['generated']} test cases")
    assert report["test_cases"]["generated"] > 100, output  # it really fuzzed
    assert report["operations"]["tested"] == report["operations"]["total"], output
    assert report["failures"] == [] and report["errors"] == [], output
    assert run.returncode == 0, output


def test_document_declares_the_real_errors_and_media_types(tmp_path: Path) -> None:
    """The corrections schemathesis relies on, read straight from the served document."""
    with running_server(server_flags(tmp_path), tmp_path) as base_url:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            document = http.get("/openapi.json").json()
            refused = http.put("/v1/traces/some-id")
    paths = document["paths"]
    every_response = [r for ops in paths.values() for op in ops.values() for r in op["responses"].items()]
    assert all(status != "422" for status, _ in every_response)  # the server answers 400, not 422
    chat = paths["/v1/chat/completions"]["post"]["responses"]
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    assert {"400", "401", "404", "413", "429", "503"} <= set(chat)
    error_ref = chat["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith(ERROR_SCHEMA_NAME)
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    prompt = document["components"]["schemas"]["CompletionRequest"]["properties"]["prompt"]["anyOf"]
    assert {branch.get("minLength", branch.get("minItems")) for branch in prompt} == {1}
    assert document["components"]["schemas"]["ChatCompletionRequest"]["then"]["required"] == ["logprobs"]
    assert refused.status_code == 405 and refused.headers["Allow"] == "DELETE, GET"
    assert refused.json()["error"]["type"] == "invalid_request_error"
