"""Pure request checks and the mapping from an OpenAI request to engine `SamplingParams`.

These run before the engine is asked to do anything, so a rejected request leaves no state behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.requests import Request

from engine.protocol import SamplingParams
from server.auth import ANONYMOUS_OWNER, get_caller
from server.errors import invalid_request, unsupported_parameter
from server.protocol import SamplingRequest, first_unsupported_param
from server.settings import ServerSettings

DEFAULT_TEMPERATURE = 1.0  # OpenAI's default
DEFAULT_TOP_P = 1.0


def check_request_limits(request: SamplingRequest, max_n: int, max_tokens_cap: int) -> None:
    """Refuse what the settings or the server's feature set rule out; raises `ApiError(400)`."""
    unsupported = first_unsupported_param(request.model_extra)
    if unsupported is not None:
        raise unsupported_parameter(unsupported)
    if request.num_choices > max_n:
        raise invalid_request(
            f"Invalid value for 'n': {request.num_choices} is more than this server's limit of {max_n}.",
            "n",
            "invalid_value",
        )
    requested, param = request.requested_max_tokens()
    if requested is not None and requested > max_tokens_cap:
        raise invalid_request(
            f"Invalid value for '{param}': {requested} is more than this server's limit of {max_tokens_cap}.",
            param,
            "invalid_value",
        )
    if request.stream_options is not None and not request.is_streaming:
        raise invalid_request(
            "'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value"
        )


def resolve_max_tokens(
    num_prompt_tokens: int, request: SamplingRequest, max_context: int, max_tokens_cap: int, prompt_param: str
) -> int:
    """How many tokens to generate: the request's value if it fits, else what fits (capped)."""
    if num_prompt_tokens >= max_context:
        raise invalid_request(
            f"This model's maximum context length is {max_context} tokens, and '{prompt_param}' "
            f"alone is {num_prompt_tokens} tokens, leaving no room for a completion.",
            prompt_param,
            "context_length_exceeded",
        )
    room = max_context - num_prompt_tokens
    requested, param = request.requested_max_tokens()
    if requested is None:
        return min(room, max_tokens_cap)
    if requested > room:
        raise invalid_request(
            f"This model's maximum context length is {max_context} tokens; you requested "
            f"{num_prompt_tokens + requested} ({num_prompt_tokens} in '{prompt_param}', {requested} "
            f"in '{param}'). Reduce '{param}' or '{prompt_param}'.",
            param,
            "context_length_exceeded",
        )
    return requested


def cache_salt_for(owner: str, request_salt: str | None, is_shared_across_keys: bool) -> str | None:
    """A request's prefix-cache namespace: its key's owner, unless the operator shares the cache
    across keys, narrowed by the request's own `cache_salt`; None is the shared namespace.

    A cache hit is visible (`cached_tokens`, latency) and tells a caller what cached prompts
    begin with, so keys never share one by default (SGLang's `extra_key`, vLLM's `cache_salt`).
    """
    owner_part = None if is_shared_across_keys or owner == ANONYMOUS_OWNER else owner
    if owner_part is None and request_salt is None:
        return None
    return json.dumps([owner_part, request_salt])  # unambiguous: no salt can pose as an owner


def request_cache_salt(
    request: SamplingRequest, settings: ServerSettings, http_request: Request
) -> str | None:
    """`cache_salt_for` the caller the auth middleware recorded."""
    owner = get_caller(http_request).owner
    return cache_salt_for(owner, request.cache_salt, settings.share_prefix_cache_across_keys)


def to_sampling_params(
    request: SamplingRequest,
    max_new_tokens: int,
    num_top_logprobs: int | None,
    model_defaults: Mapping[str, float] | None = None,
    cache_salt: str | None = None,
) -> SamplingParams:
    """`num_top_logprobs=None` asks for no logprobs; 0 asks for the sampled token's only.

    A field the request leaves unset takes the model's recommended value, then OpenAI's default.
    """
    defaults = {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P, "top_k": 0.0}
    defaults.update(model_defaults or {})
    return SamplingParams(
        max_new_tokens=max_new_tokens,
        temperature=defaults["temperature"] if request.temperature is None else request.temperature,
        top_p=defaults["top_p"] if request.top_p is None else request.top_p,
        top_k=int(defaults["top_k"]) if request.top_k is None else request.top_k,
        n=request.num_choices,
        stop=tuple(request.stop),
        seed=request.seed,
        logprobs=num_top_logprobs is not None,
        top_logprobs=num_top_logprobs or 0,
        ignore_eos=request.ignore_eos,
        cache_salt=cache_salt,
    )
