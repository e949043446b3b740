"""The bodies of the generation routes, which FastAPI cannot infer, for the OpenAPI document.

Those routes return either a JSON body or a server-sent event stream (`stream: true`), so they
declare no response model. Here both are described: `application/json` is the whole response,
`text/event-stream` one `data:` event's chunk, ponder's extension fields included (`search`,
`delta.reasoning_content`, `delta.search_event`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.responses import ChatCompletionChunk, ChatCompletionResponse, CompletionResponse

REF_TEMPLATE = "#/components/schemas/{model}"
BODIES: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "/v1/chat/completions": (ChatCompletionResponse, ChatCompletionChunk),
    "/v1/completions": (CompletionResponse, CompletionResponse),
}
"""Route -> (the whole response, one streamed chunk)."""


def describe_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each route of `BODIES` answering its JSON and its event-stream body."""
    models = {model for pair in BODIES.values() for model in pair}
    inputs = [(model, "validation") for model in models]
    _, definitions = models_json_schema(inputs, ref_template=REF_TEMPLATE)  # type: ignore[arg-type]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)
    for path, (whole, chunk) in BODIES.items():
        operation = schema.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        ok = operation.setdefault("responses", {}).setdefault("200", {"description": "Successful Response"})
        ok["content"] = {
            "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=whole.__name__)}},
            "text/event-stream": {"schema": {"$ref": REF_TEMPLATE.format(model=chunk.__name__)}},
        }
    return schema
