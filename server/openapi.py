"""The OpenAPI document, corrected to say what the server really answers.

FastAPI documents a 422 for every route with parameters and JSON for every response. This server
answers validation errors with 400 (`server.errors`), answers every error with the OpenAI envelope,
streams `text/event-stream`, serves `/metrics` as Prometheus text, and checks a bearer key in
middleware FastAPI cannot see. `install_openapi` post-processes the generated document once so a
client generated from it, or a fuzzer checking responses against it (schemathesis, in the tests),
meets the server that runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from server.auth import ADMIN_PREFIX, needs_auth
from server.openapi_bodies import describe_bodies

ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "description": "OpenAI's error envelope: what every error response carries.",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}
SECURITY_SCHEME = "bearerAuth"
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

STATUS_REASONS = {
    400: "Invalid request: a malformed body, or a value the server's limits refuse",
    401: "Missing or wrong API key",
    403: "The key is not the admin key",
    404: "No such model or record",
    409: "The candidate version was refused; the serving version keeps serving",
    413: "Request body over max_request_bytes",
    429: "max_concurrent_requests are already being served",
    503: "Not ready, overloaded (queue timeout, with Retry-After) or shutting down",
    504: "Generation exceeded the request timeout",
}
GENERATION_ERRORS = (400, 404, 413, 429, 503, 504)
ADMIN_ERRORS = (400, 403, 404, 409, 413, 503)
OPERATION_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/chat/completions"): GENERATION_ERRORS,
    ("post", "/v1/completions"): GENERATION_ERRORS,
    ("get", "/ready"): (503,),
    ("post", "/v1/score"): (400, 404, 413),
    ("get", "/v1/traces"): (400,),
    ("get", "/v1/traces/{trace_id}"): (404,),
    ("delete", "/v1/traces/{trace_id}"): (404,),
    ("post", "/v1/admin/reload"): ADMIN_ERRORS,
    ("post", "/v1/admin/rollback"): ADMIN_ERRORS,
}
"""The error statuses each operation can answer besides 401, which `needs_auth` decides."""
STREAMING_OPERATIONS = frozenset({("post", "/v1/chat/completions"), ("post", "/v1/completions")})
TEXT_OPERATIONS = frozenset({("get", "/metrics")})
"""Prometheus' text exposition format, not JSON."""


def install_openapi(app: FastAPI, has_api_key: bool) -> None:
    """Make `app.openapi()` (and /openapi.json) return the corrected document; `has_api_key`
    says whether the API key is checked, so the document claims auth only where it is."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = conform(describe_bodies(FastAPI.openapi(app)), has_api_key)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def conform(document: dict[str, Any], has_api_key: bool) -> dict[str, Any]:
    """`document` (FastAPI's) with the server's real statuses, media types and auth; in place."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    components["securitySchemes"] = {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _conform_operation(method, path, operation, has_api_key)
    return document


def _conform_operation(method: str, path: str, operation: dict[str, Any], has_api_key: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    key = (method, path)
    if key in TEXT_OPERATIONS:
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    if key in STREAMING_OPERATIONS:
        responses["200"].setdefault("content", {}).setdefault(  # one chunk's model, where described
            "text/event-stream",
            {"schema": {"type": "string", "description": "Server-sent events, ending with 'data: [DONE]'"}},
        )
    # Admin routes refuse every caller without the admin key, whatever else is configured.
    is_protected = path.startswith(ADMIN_PREFIX) or (has_api_key and needs_auth(path, "any key"))
    for status in _error_statuses(OPERATION_ERRORS.get(key, ()), is_protected):
        responses[str(status)] = _error_response(status)
    if is_protected:
        operation["security"] = [{SECURITY_SCHEME: []}]


def _error_statuses(statuses: Iterable[int], is_protected: bool) -> list[int]:
    return sorted({*statuses, *((401,) if is_protected else ())})


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": STATUS_REASONS[status],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
    return response
