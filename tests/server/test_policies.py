"""Auth and admission policies as pure functions, without FastAPI."""

from __future__ import annotations

import pytest

from server.auth import is_authorized, needs_auth
from server.errors import ApiError
from server.limits import AdmissionGate, can_admit, is_body_too_large

KEY = "sk-right"


@pytest.mark.parametrize(
    ("header", "api_key", "expected"),
    [
        (None, None, True),
        ("Bearer anything", None, True),
        (f"Bearer {KEY}", KEY, True),
        (f"bearer {KEY}", KEY, True),
        (f"Bearer  {KEY} ", KEY, True),
        (None, KEY, False),
        ("", KEY, False),
        ("Bearer sk-wrong", KEY, False),
        (f"Bearer {KEY}x", KEY, False),
        (KEY, KEY, False),
        (f"Basic {KEY}", KEY, False),
        ("Bearer ", KEY, False),
        ("Bearer ключ", KEY, False),
    ],
)
def test_is_authorized(header: str | None, api_key: str | None, expected: bool) -> None:
    assert is_authorized(header, api_key) is expected


@pytest.mark.parametrize(
    ("path", "api_key", "expected"),
    [
        ("/health", KEY, False),
        ("/ready", KEY, False),
        ("/metrics", KEY, False),
        ("/v1/models", KEY, True),
        ("/v1/chat/completions", KEY, True),
        ("/docs", KEY, True),
        ("/v1/models", None, False),
        ("/traces", KEY, False),  # the viewer's static pages: their data comes from /v1/traces
        ("/traces/abc", KEY, False),
        ("/viewer/trace.js", KEY, False),
        ("/v1/traces", KEY, True),
        ("/v1/traces/abc", KEY, True),
        ("/tracesx", KEY, True),
        ("/viewerx", KEY, True),
    ],
)
def test_needs_auth(path: str, api_key: str | None, expected: bool) -> None:
    assert needs_auth(path, api_key) is expected


@pytest.mark.parametrize(
    ("num_in_flight", "limit", "expected"),
    [(0, 1, True), (1, 1, False), (3, 4, True), (4, 4, False), (5, 4, False)],
)
def test_can_admit(num_in_flight: int, limit: int, expected: bool) -> None:
    assert can_admit(num_in_flight, limit) is expected


@pytest.mark.parametrize(
    ("num_bytes", "limit", "expected"), [(0, 10, False), (10, 10, False), (11, 10, True)]
)
def test_is_body_too_large(num_bytes: int, limit: int, expected: bool) -> None:
    assert is_body_too_large(num_bytes, limit) is expected


def test_gate_refuses_beyond_limit_and_release_is_idempotent() -> None:
    gate = AdmissionGate(limit=2)
    first, second = gate.admit(), gate.admit()
    with pytest.raises(ApiError) as refused:
        gate.admit()
    assert refused.value.status == 429
    assert gate.num_in_flight == 2  # a refused request holds nothing
    first.release()
    first.release()
    assert gate.num_in_flight == 1
    with gate.admit():
        assert gate.num_in_flight == 2
    second.release()
    assert gate.num_in_flight == 0
