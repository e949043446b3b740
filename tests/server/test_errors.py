"""The one exception -> OpenAI envelope mapping, as pure functions (no app, no model)."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from server import errors
from server.errors import ApiError, error_envelope, param_from_loc, to_api_error


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "messages"), "messages"),
        (("body", "messages", 0, "content"), "messages[0].content"),
        (("body", "messages", 2, "content", 1, "type"), "messages[2].content[1].type"),
        (("body", "stream_options", "include_usage"), "stream_options.include_usage"),
        (("body",), None),
        (("query", "limit"), "limit"),
    ],
)
def test_param_from_loc(loc: tuple[str | int, ...], expected: str | None) -> None:
    assert param_from_loc(loc) == expected


def _validation(error: dict[str, object]) -> RequestValidationError:
    return RequestValidationError([error])


@pytest.mark.parametrize(
    ("exc", "status", "param", "code"),
    [
        (
            _validation({"type": "missing", "loc": ("body", "messages"), "msg": "Field required"}),
            400,
            "messages",
            "missing_required_parameter",
        ),
        (
            _validation(
                {"type": "greater_than_equal", "loc": ("body", "temperature"), "msg": "Input should be >= 0"}
            ),
            400,
            "temperature",
            "invalid_value",
        ),
        (
            _validation(
                {
                    "type": "json_invalid",
                    "loc": ("body", 7),
                    "msg": "JSON decode error",
                    "ctx": {"error": "Expecting value"},
                }
            ),
            400,
            None,
            "invalid_json",
        ),
        (
            _validation({"type": "model_attributes_type", "loc": ("body",), "msg": "not an object"}),
            400,
            None,
            None,
        ),
        (HTTPException(404, "Not Found"), 404, None, None),
        (HTTPException(405, "Method Not Allowed"), 405, None, None),
        (errors.model_not_found("gpt-9", ["a"]), 404, "model", "model_not_found"),
        (errors.unauthorized(), 401, None, "invalid_api_key"),
        (errors.too_many_requests(3), 429, None, "rate_limit_exceeded"),
        (errors.body_too_large(10, 5), 413, None, "request_too_large"),
        (errors.not_ready("m"), 503, "model", "model_not_ready"),
        (errors.timed_out(1.5), 504, None, "timeout"),
        (errors.unsupported_parameter("tools"), 400, "tools", "unsupported_parameter"),
        (RuntimeError("boom"), 500, None, None),
    ],
)
def test_to_api_error_status_param_code(
    exc: Exception, status: int, param: str | None, code: str | None
) -> None:
    error = to_api_error(exc)
    assert (error.status, error.param, error.code) == (status, param, code)
    if param is not None:
        assert param in error.message  # every message names the offending field


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("/work/main/.cache/models/secret.safetensors is corrupt"),
        KeyError("sk-live-key"),
        ValueError("Traceback (most recent call last): File '/srv/app.py'"),
    ],
)
def test_unexpected_errors_leak_nothing(exc: Exception) -> None:
    envelope = error_envelope(to_api_error(exc))
    text = str(envelope)
    assert envelope["error"]["type"] == "server_error"
    for secret in ("/work", "/srv", "sk-live", "Traceback", ".safetensors"):
        assert secret not in text


def test_envelope_has_exactly_the_openai_keys() -> None:
    envelope = error_envelope(ApiError(400, "bad n", param="n", code="invalid_value"))
    assert envelope == {
        "error": {"message": "bad n", "type": "invalid_request_error", "param": "n", "code": "invalid_value"}
    }
