"""Bearer-key authentication: a pure policy plus the ASGI middleware that applies it.

It runs as middleware, before routing and before the body is read, so an unauthenticated client
learns nothing (not even whether its JSON parses) and costs the server no work.
Probes (/health, /ready) and the Prometheus scrape (/metrics) stay open: orchestrators and
scrapers do not carry the API key.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import error_response, unauthorized

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
BEARER_PREFIX = "bearer "


def needs_auth(path: str, api_key: str | None) -> bool:
    return api_key is not None and path not in OPEN_PATHS


def is_authorized(authorization: str | None, api_key: str | None) -> bool:
    """True when no key is configured or the header is `Bearer <api_key>` (constant-time compare)."""
    if api_key is None:
        return True
    if authorization is None or not authorization.lower().startswith(BEARER_PREFIX):
        return False
    presented = authorization[len(BEARER_PREFIX) :].strip()
    return hmac.compare_digest(presented.encode(), api_key.encode())


class ApiKeyMiddleware:
    """Answers 401 to any HTTP request on a protected path without the right bearer key."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and needs_auth(scope["path"], self.api_key):
            if not is_authorized(_header(scope, b"authorization"), self.api_key):
                await error_response(unauthorized())(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
