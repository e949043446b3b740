"""The trace viewer: `GET /traces` lists recorded searches, `GET /traces/{id}` draws one's tree
(step text, PRM score, MCTS visits and value, tokens generated and prefill computed/reused, the
chosen path highlighted, abandoned branches greyed) and replays the search in the order its
nodes were made.

Everything is a static file of this package (server/static/: no CDN, the machines are offline).
How it is protected: the pages are the same for everyone and hold no data, so they are served
without a key (a browser cannot send a bearer header when it navigates). Their script reads
the key from the page's fragment (`/traces/{id}#key=...`, as `ponder trace ID --open` builds
it: a fragment never reaches the server, its logs or a Referer), keeps it in the tab's
sessionStorage, drops it from the address bar, and sends it as `Authorization: Bearer` to
`/v1/traces`, which checks it like every API route and shows a caller only its own traces.
Without a key the page asks for one. A `?key=` query parameter was rejected: it would land in
access logs and browser history. A strict Content-Security-Policy allows only these files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from server.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
ASSETS = frozenset({"viewer.css", "common.js", "trace.js", "traces.js"})
"""The files under /viewer/: an allowlist, so no path ever reaches the filesystem unchecked."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def static_file(name: str) -> Response:
    """One file of server/static/ with the viewer's security headers."""
    path = STATIC_DIR / name
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/traces")
async def traces_page() -> Response:
    """The list of traces, with filters; the data comes from `GET /v1/traces`."""
    return static_file("traces.html")


@router.get("/traces/{trace_id}")
async def trace_page(trace_id: str) -> Response:
    """One trace's tree; the same page for every id (the data comes from `GET /v1/traces/{id}`)."""
    return static_file("trace.html")


@router.get("/viewer/{name}")
async def viewer_asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, f"No viewer file '{name}'.", param="name", code="not_found")
    return static_file(name)
