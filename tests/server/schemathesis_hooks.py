"""schemathesis hooks for `test_openapi_conformance` (loaded through SCHEMATHESIS_HOOKS).

Generated model names are random, so without this every generating request would stop at 404
and the fuzzer would never reach sampling, search or the engine, where the 500s hide (a tiny
`top_p` once made NaN probabilities). A `model` that is already valid by the schema is pointed
at a model the server serves; an invalid one (a negative case) is left invalid.
"""

from __future__ import annotations

from typing import Any

import schemathesis

SERVED_MODELS = {"/v1/chat/completions": "countdown", "/v1/completions": "countdown"}
SERVED_PRM = "countdown-checker"


@schemathesis.hook
def map_body(ctx: schemathesis.HookContext, body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        return body
    path = ctx.operation.path if ctx.operation is not None else ""
    model = SERVED_PRM if path == "/v1/score" else SERVED_MODELS.get(path)
    return body if model is None else {**body, "model": model}
