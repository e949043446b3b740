"""OpenAI-compatible request bodies for /v1/chat/completions and /v1/completions.

Field bounds that do not depend on server settings live here, so a bad value is rejected by
pydantic before any handler runs (and reported with its parameter name by `server.errors`).
Unknown fields are kept in `model_extra` and ignored, except the semantic features listed in
`UNSUPPORTED_PARAMS`, which would silently change the meaning of the answer and so are refused.
Response bodies are in `server.responses`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict

from search.api import SearchRequest

MAX_STOP_SEQUENCES = 4  # OpenAI's limit on `stop`
MAX_CHAT_TOP_LOGPROBS = 20  # OpenAI's limit on chat `top_logprobs`
MAX_COMPLETION_LOGPROBS = 5  # OpenAI's limit on legacy completions `logprobs`
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_CACHE_SALT_CHARS = 256


def _is_absent(value: Any) -> bool:
    return value is None or value == [] or value == {}


# parameter -> "this value asks for nothing we would ignore"; any other value is a 400.
UNSUPPORTED_PARAMS: dict[str, Callable[[Any], bool]] = {
    "tools": _is_absent,
    "functions": _is_absent,
    "tool_choice": lambda v: v is None or v == "none",
    "function_call": lambda v: v is None or v == "none",
    "response_format": lambda v: v is None or (isinstance(v, dict) and v.get("type") == "text"),
    "logit_bias": _is_absent,
    "audio": _is_absent,
    "prediction": _is_absent,
    "web_search_options": _is_absent,
    "modalities": lambda v: v is None or v == ["text"],
    "echo": lambda v: v is None or v is False,
    "suffix": lambda v: v is None or v == "",
    "best_of": lambda v: v is None or v == 1,
}


def first_unsupported_param(extra: dict[str, Any] | None) -> str | None:
    """The first extra field that asks for a feature this server does not implement."""
    for name, value in (extra or {}).items():
        is_harmless = UNSUPPORTED_PARAMS.get(name)
        if is_harmless is not None and not is_harmless(value):
            return name
    return None


def _valid_unicode(text: str) -> str:
    """JSON may carry a lone surrogate (`"\\ud800"`); no tokenizer can encode it, so it is the
    caller's 400 here rather than a tokenizer failure (a 500) later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = f"{text[exc.start]!r} at character {exc.start}"
        raise ValueError(f"contains a lone surrogate ({where}), which is not valid Unicode") from None
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]
NonEmptyText = Annotated[Text, Field(min_length=1)]
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


def _as_list(value: Any) -> Any:
    """`"x"` -> `["x"]` and `None` -> `[]`, so `stop` and `content` have one shape downstream."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _as_text_parts(value: Any) -> Any:
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


StopList = Annotated[
    list[NonEmptyText],
    BeforeValidator(_as_list, json_schema_input_type=NonEmptyText | list[NonEmptyText] | None),
    Field(max_length=MAX_STOP_SEQUENCES),
]


STRICT = ConfigDict(strict=True)
"""Request bodies take JSON's own types: `"5"` or `true` for an integer is a 400, as the schema
says, not quietly coerced (schemathesis caught `max_step_tokens: true` accepted)."""


class ContentPart(BaseModel):
    """One part of a message's content; only text parts exist for a text-only model."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: Literal["text"] = Field(description="only 'text': the served models read text only")
    text: Text


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    # The schema shows both forms the validator takes: a string, or a list of text parts.
    content: Annotated[
        list[ContentPart], BeforeValidator(_as_text_parts, json_schema_input_type=Text | list[ContentPart])
    ]
    name: str | None = None

    def text(self) -> str:
        # vLLM joins text parts with newlines; a plain string content is one part.
        return "\n".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False


class PonderExtensions(BaseModel):
    """ponder's own fields, sent by the `openai` client through `extra_body`: a chat request with
    either one searches (`server.serving_search`); typed here so /docs shows every knob and a bad
    one is a 400 naming it (`search.beam_width`) before any handler runs."""

    model_config = STRICT

    search: SearchRequest | None = Field(
        default=None, description="Search before answering: the strategy, its budget and its knobs."
    )
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = Field(
        default=None,
        description="low, medium or high: a preset search (none/minimal: no search); search knobs refine it.",
    )


class SamplingRequest(PonderExtensions):
    """Fields shared by chat and completions; `None` means "the OpenAI default"."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1)
    stop: StopList = Field(default_factory=list)
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Accepted for compatibility and ignored: the engine samples without repetition penalties.
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    # vLLM-compatible extensions.
    top_k: int | None = Field(None, ge=0)
    ignore_eos: bool = False
    # vLLM's: prefixes are reused only between requests (of one key) sending the same salt.
    cache_salt: Annotated[Text, Field(min_length=1, max_length=MAX_CACHE_SALT_CHARS)] | None = None

    @property
    def num_choices(self) -> int:
        return self.n or 1

    @property
    def is_streaming(self) -> bool:
        return bool(self.stream)

    @property
    def includes_stream_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def requested_max_tokens(self) -> tuple[int | None, str]:
        """The requested completion length and the parameter that carried it (for error messages)."""
        return self.max_tokens, "max_tokens"


# JSON Schema of the rule `_top_logprobs_need_logprobs` enforces, so the OpenAPI document refuses
# what the server refuses: a positive `top_logprobs` needs `logprobs: true`.
TOP_LOGPROBS_NEED_LOGPROBS: JsonDict = {
    "if": {"properties": {"top_logprobs": {"type": "integer", "minimum": 1}}, "required": ["top_logprobs"]},
    "then": {"properties": {"logprobs": {"const": True}}, "required": ["logprobs"]},
}


class ChatCompletionRequest(SamplingRequest):
    model_config = ConfigDict(json_schema_extra=TOP_LOGPROBS_NEED_LOGPROBS)

    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_CHAT_TOP_LOGPROBS)

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_need_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        """As OpenAI: alternatives per token are only returned with the tokens' own logprobs."""
        if value and not info.data.get("logprobs"):
            raise ValueError("'top_logprobs' requires 'logprobs' to be true")
        return value

    def requested_max_tokens(self) -> tuple[int | None, str]:
        # OpenAI deprecated max_tokens in favour of max_completion_tokens: the newer one wins.
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        return self.max_tokens, "max_tokens"


class CompletionRequest(SamplingRequest):
    """Legacy completions: one prompt, as text or as token ids."""

    prompt: NonEmptyText | TokenIds
    logprobs: int | None = Field(None, ge=0, le=MAX_COMPLETION_LOGPROBS)

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        """Reject batches, bad token ids and empty prompts with one clear message, not union noise."""
        is_token_list = isinstance(value, list) and all(type(t) is int and t >= 0 for t in value)
        if not (isinstance(value, str) or is_token_list):
            raise ValueError(
                "prompt must be a string or a list of token ids >= 0 (batches are not supported)"
            )
        if len(value) == 0:
            raise ValueError("prompt must not be empty")
        return _valid_unicode(value) if isinstance(value, str) else value
