"""Bearer-key authentication: a pure policy plus the ASGI middleware that applies it.

It runs as middleware, before routing and before the body is read, so an unauthenticated client
learns nothing (not even whether its JSON parses) and costs the server no work.
Probes (/health, /ready) and the Prometheus scrape (/metrics) stay open: orchestrators and
scrapers do not carry the API key. So do the trace viewer's pages (/traces, /traces/{id},
/viewer/*): a browser cannot send a bearer header when it navigates, and those pages are the
same static files for everyone, holding no data. Their script fetches the data from /v1/traces
with the key as a bearer header, so the traces themselves stay protected like the rest of the
API (see `server.routes_viewer`).

Two keys exist. The API key (`--api-key`) opens the API; the admin key (`--admin-key`) opens it
too and also the `/v1/admin/*` routes (reload, rollback) and every caller's traces. The caller's
identity travels in the ASGI scope (`CALLER_SCOPE_KEY`), so handlers can tell whose trace is whose
without seeing any key: an owner is a hash of the key, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import ApiError, error_response, unauthorized

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/traces"})
OPEN_PREFIXES = ("/traces/", "/viewer/")
"""The viewer's static pages and assets (no data: see the module docstring)."""
ADMIN_PREFIX = "/v1/admin/"
BEARER_PREFIX = "bearer "
CALLER_SCOPE_KEY = "ponder.caller"
ANONYMOUS_OWNER = ""
"""The owner of what a caller makes when the server has no API key: everyone may read it."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: `owner` names its key (a hash); `is_admin` when it is the admin key."""

    owner: str = ANONYMOUS_OWNER
    is_admin: bool = False
    has_key: bool = False

    def may_read(self, owner: str) -> bool:
        """Whether this caller may see something made by `owner` (a trace)."""
        return self.is_admin or owner == ANONYMOUS_OWNER or owner == self.owner


def owner_of(key: str) -> str:
    """A stable, non-reversible name for a key (what the trace store keeps)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def needs_auth(path: str, api_key: str | None) -> bool:
    return api_key is not None and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES)


def _presented(authorization: str | None) -> str | None:
    if authorization is None or not authorization.lower().startswith(BEARER_PREFIX):
        return None
    return authorization[len(BEARER_PREFIX) :].strip()


def _matches(presented: str | None, key: str | None) -> bool:
    return presented is not None and key is not None and hmac.compare_digest(presented.encode(), key.encode())


def identify(authorization: str | None, api_key: str | None, admin_key: str | None = None) -> Caller | None:
    """The caller behind an Authorization header, or None when it must be refused (401).

    Without a configured API key every caller is let in (anonymous unless it shows the admin key).
    """
    presented = _presented(authorization)
    if _matches(presented, admin_key):
        return Caller(owner=owner_of(admin_key or ""), is_admin=True, has_key=True)
    if api_key is None:
        return Caller(has_key=presented is not None)
    if _matches(presented, api_key):
        return Caller(owner=owner_of(api_key), has_key=True)
    return None


def is_authorized(authorization: str | None, api_key: str | None) -> bool:
    """True when no key is configured or the header is `Bearer <api_key>` (constant-time compare)."""
    return identify(authorization, api_key) is not None


class ApiKeyMiddleware:
    """Answers 401 to any HTTP request on a protected path without a right bearer key, and
    records who the caller is for the handlers."""

    def __init__(self, app: ASGIApp, api_key: str | None, admin_key: str | None = None) -> None:
        self.app = app
        self.api_key = api_key
        self.admin_key = admin_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            caller = identify(_header(scope, b"authorization"), self.api_key, self.admin_key)
            if caller is None and needs_auth(scope["path"], self.api_key):
                await error_response(unauthorized())(scope, receive, send)
                return
            scope[CALLER_SCOPE_KEY] = caller or Caller()
        await self.app(scope, receive, send)


def get_caller(request: Request) -> Caller:
    caller = request.scope.get(CALLER_SCOPE_KEY)
    return caller if isinstance(caller, Caller) else Caller()


def require_admin(request: Request) -> Caller:
    """The admin caller, or 401 (no key shown) / 403 (a key that is not the admin key)."""
    caller = get_caller(request)
    if caller.is_admin:
        return caller
    if not caller.has_key:
        message = "This route needs the admin key: send 'Authorization: Bearer <admin key>'."
        raise ApiError(401, message, "invalid_request_error", None, "missing_admin_key")
    raise ApiError(403, "This key may not use admin routes.", "permission_error", None, "not_admin")


CallerDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(require_admin)]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
