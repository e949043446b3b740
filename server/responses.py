"""OpenAI-compatible response bodies: chat.completion(.chunk), text_completion, usage, models.

A streamed delta carries only what changed (`{"content": "x"}`, `{}` on the finish chunk), as in
OpenAI's streams; every other field is always present, null included.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from engine.protocol import ModelCard


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now_s() -> int:
    return int(time.time())


def system_fingerprint(card: ModelCard) -> str:
    """Which weights answered: the served version's label, or the model id where unversioned
    (SmolLM2). A client sees a hot swap as this value changing, once, from old to new."""
    return card.version or card.model_id


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class UsageInfo(BaseModel):
    """Every token a request caused: the prompt once, completions summed over all choices."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo
    system_fingerprint: str | None = None
    search: dict[str, Any] | None = None  # ponder's own: what the search did (absent without one)

    @model_serializer(mode="wrap")
    def _search_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty_search(handler(self))


class SearchEventOut(BaseModel):
    """ponder's `delta.search_event`: one thing a streamed search did (`search.events`), or a
    `progress` heartbeat. Nodes are numbered as in the search's trace (`seq`; the root is 0).
    Only the fields of the event's kind are present."""

    kind: Literal["expand", "score", "prune", "rollout", "commit", "chosen", "progress"]
    node: int | None = Field(default=None, description="The node's number: the trace's `seq`.")
    parent: int | None = Field(default=None, description="expand: its parent; rollout: where it began.")
    text: str | None = Field(default=None, description="expand: the step's text.")
    num_tokens: int | None = None
    is_terminal: bool | None = Field(default=None, description="expand: the step ends a reply.")
    is_duplicate: bool | None = Field(default=None, description="expand: a sibling's step again.")
    score: float | None = Field(default=None, description="score: the step's PRM score.")
    path_score: float | None = Field(default=None, description="score: its path's, aggregated.")
    value: float | None = Field(default=None, description="rollout: the reply's value, backed up.")
    reason: str | None = Field(default=None, description="prune: beam, budget, subtree or duplicate.")
    tokens_generated: int | None = Field(default=None, description="progress: so far, every branch.")
    nodes_expanded: int | None = Field(default=None, description="progress: so far.")
    elapsed_s: float | None = Field(default=None, description="progress: since the search began.")

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = Field(
        default=None, description="A search's best path so far, a step a line (`server.search_stream`)."
    )
    search_event: SearchEventOut | None = Field(
        default=None, description="ponder's own: what a streamed search just did."
    )

    @model_serializer(mode="wrap")
    def _only_changed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None
    search: dict[str, Any] | None = None  # on the last chunk of a search: what it did

    @model_serializer(mode="wrap")
    def _search_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_empty_search(handler(self))


class CompletionLogprobs(BaseModel):
    """The legacy completions logprobs shape (parallel lists, one entry per token)."""

    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    """Both the whole response and, with `usage` unset, one streamed chunk (same object type)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ponder"
    kind: Literal["generate", "reward"] = "generate"
    max_model_len: int | None = None
    version: str | None = None  # the served version's label ("policy-v3"); null: unversioned


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def _without_empty_search(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("search") is None:
        fields.pop("search", None)
    return fields
