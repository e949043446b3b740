"""The one mapping from anything a request can raise to the OpenAI error envelope.

Every failure reaches the client as `{"error": {"message", "type", "param", "code"}}` with a
message that names the offending field. Nothing internal crosses this boundary: unexpected
exceptions are logged here with their traceback and answered with a fixed sentence.

Validation failures are 400 (not FastAPI's 422), because OpenAI answers every malformed request,
a missing `messages` included, with 400 `invalid_request_error`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.protocol import InvalidPromptError

logger = logging.getLogger("ponder.server")

INVALID_REQUEST = "invalid_request_error"


@dataclass
class ApiError(Exception):
    """An error the client should see; raised anywhere in the request pipeline."""

    status: int
    message: str
    type: str = INVALID_REQUEST
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] | None = None  # extra response headers, e.g. Retry-After

    def __str__(self) -> str:
        return self.message


def invalid_request(message: str, param: str | None, code: str | None = None) -> ApiError:
    return ApiError(400, message, INVALID_REQUEST, param, code)


def unsupported_parameter(param: str) -> ApiError:
    return invalid_request(
        f"Unsupported parameter: '{param}' is not supported by this server.", param, "unsupported_parameter"
    )


def model_not_found(model: str, served: Sequence[str]) -> ApiError:
    return ApiError(
        404,
        f"The model '{model}' does not exist on this server; served models: {sorted(served)}.",
        INVALID_REQUEST,
        "model",
        "model_not_found",
    )


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "Missing or incorrect API key: send the header 'Authorization: Bearer <key>'.",
        INVALID_REQUEST,
        None,
        "invalid_api_key",
    )


def too_many_requests(limit: int) -> ApiError:
    return ApiError(
        429,
        f"Too many requests: {limit} are already being served (max_concurrent_requests); retry later.",
        "rate_limit_error",
        None,
        "rate_limit_exceeded",
    )


def body_too_large(num_bytes: int | None, limit: int) -> ApiError:
    size = "larger than" if num_bytes is None else f"{num_bytes} bytes, over"
    return ApiError(
        413,
        f"Request body is {size} the limit of {limit} bytes (max_request_bytes).",
        INVALID_REQUEST,
        None,
        "request_too_large",
    )


def not_ready(model: str) -> ApiError:
    return ApiError(
        503,
        f"The model '{model}' is still loading; retry when GET /ready answers 200.",
        "service_unavailable_error",
        "model",
        "model_not_ready",
    )


def shutting_down(seconds: float) -> ApiError:
    return ApiError(
        503,
        f"The server is shutting down and stopped this request after {seconds:g} s "
        "(shutdown_timeout); retry on another instance.",
        "service_unavailable_error",
        None,
        "server_shutting_down",
    )


def queue_timed_out(seconds: float) -> ApiError:
    # Waiting as long again is a fair first backoff: by then the queue has moved on that much.
    return ApiError(
        503,
        f"The server is overloaded: this request waited {seconds:g} s (queue_timeout_s) "
        "without being started; retry after the Retry-After header's seconds.",
        "service_unavailable_error",
        None,
        "queue_timeout",
        headers={"Retry-After": str(max(1, math.ceil(seconds)))},
    )


def timed_out(seconds: float) -> ApiError:
    return ApiError(
        504, f"Generation exceeded the request timeout of {seconds:g} s.", "timeout_error", None, "timeout"
    )


def internal_error() -> ApiError:
    return ApiError(500, "The server had an internal error while processing the request.", "server_error")


def error_envelope(error: ApiError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def error_response(error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    headers |= error.headers or {}
    return JSONResponse(error_envelope(error), status_code=error.status, headers=headers)


def to_api_error(exc: BaseException) -> ApiError:
    """Classify any exception; the only place that decides what a client learns about a failure."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        return from_validation_errors(exc.errors())
    if isinstance(exc, InvalidPromptError):
        return invalid_request(f"Invalid prompt: {exc}.", "prompt", "invalid_prompt")
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        kind = INVALID_REQUEST if exc.status_code < 500 else "server_error"
        # Starlette's headers carry meaning: a 405's `Allow` lists the methods the path answers.
        return ApiError(exc.status_code, detail, kind, headers=dict(exc.headers or {}) or None)
    logger.error("unhandled error while serving a request", exc_info=exc)
    return internal_error()


def from_validation_errors(errors: Sequence[Any]) -> ApiError:
    """The first pydantic/FastAPI validation error, as a 400 naming the parameter."""
    if not errors:
        return invalid_request("The request body is invalid.", None)
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "JSON decode error")
        return invalid_request(f"The request body is not valid JSON: {reason}.", None, "invalid_json")
    param = param_from_loc(first.get("loc", ()))
    if param is None:
        return invalid_request(
            "The request body must be a JSON object sent with 'Content-Type: application/json'.", None
        )
    if first.get("type") == "missing":
        return invalid_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")  # pydantic's prefix
    return invalid_request(f"Invalid value for '{param}': {reason}.", param, "invalid_value")


def param_from_loc(loc: Sequence[str | int]) -> str | None:
    """`('body', 'messages', 0, 'content')` -> `messages[0].content`; None for the body itself."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    error = to_api_error(exc)
    if error.status == HTTPStatus.METHOD_NOT_ALLOWED:
        error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(error)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path: Starlette's own 405 names only the first
    route's, so `DELETE /v1/traces/{id}` went missing from a `PUT`'s `Allow` (RFC 9110 wants all)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


# Exceptions `to_api_error` maps to a client error. Each needs its own handler: Starlette answers
# an `Exception` handler from its outermost middleware and then re-raises, so a 4xx left to it
# would be logged as an unhandled ASGI exception and counted as a 500 by the metrics middleware.
CLIENT_ERROR_CLASSES: tuple[type[Exception], ...] = (
    ApiError,
    RequestValidationError,
    StarletteHTTPException,
    InvalidPromptError,
)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception class the app can see through `to_api_error`."""
    for exc_class in (*CLIENT_ERROR_CLASSES, Exception):
        app.add_exception_handler(exc_class, _handle)
