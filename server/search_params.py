"""A searching chat request's OpenAI parameters: each one is honoured by the search or refused.

A search answers with one reply built from many sampled branches, so every parameter must say
what it means there: `max_tokens`/`max_completion_tokens` cap the reply (and so every branch's
length), `stop` ends every branch, `seed` seeds the search (unless `search.seed` does), `top_p`
and `top_k` shape every sample, `logprobs`/`top_logprobs` return the chosen path's tokens, `n`
must be 1. What a search cannot do (penalties, `ignore_eos`) is a 400 naming the parameter,
never silently ignored. Pure functions: checked before any work is admitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.errors import invalid_request
from server.protocol import ChatCompletionRequest
from server.serving_chat import num_top_logprobs

NO_PENALTY = (None, 0, 0.0)


def refuse_unsearchable(request: ChatCompletionRequest) -> None:
    """A 400 naming the first parameter whose value a search cannot honour."""
    for param in ("presence_penalty", "frequency_penalty"):
        if getattr(request, param) not in NO_PENALTY:
            raise invalid_request(
                f"'{param}' is not supported with search: the engine samples without penalties.",
                param,
                "unsupported_parameter",
            )
    if request.ignore_eos:
        raise invalid_request(
            "'ignore_eos' is not supported with search: a branch must be able to end in an answer.",
            "ignore_eos",
            "unsupported_parameter",
        )
    if (request.n or 1) != 1:
        raise invalid_request("A search returns one choice: 'n' must be 1 (use search.n).", "n")


def search_params(
    request: ChatCompletionRequest, has_guiding_prm: bool, sampling_defaults: Mapping[str, float]
) -> dict[str, Any]:
    """The search config fields the request's own parameters set (a `search` knob of the same
    name wins); `top_p`/`top_k` left unset take the model's recommended ones, as in plain
    sampling. Without a PRM to guide the model, a request that does not ask for one searches by
    the policy's own step probability rather than failing."""
    params: dict[str, Any] = {}
    max_tokens, _ = request.requested_max_tokens()
    top_k = request.top_k if request.top_k is not None else sampling_defaults.get("top_k")
    fields = {
        "stop": tuple(request.stop) or None,
        "max_reply_tokens": max_tokens,
        "seed": request.seed,
        "top_p": request.top_p if request.top_p is not None else sampling_defaults.get("top_p"),
        "top_k": None if top_k is None else int(top_k),
        "logprobs": num_top_logprobs(request),
    }
    params.update({name: value for name, value in fields.items() if value is not None})
    asked_prm = request.search.prm if request.search is not None else None
    if asked_prm is None and not has_guiding_prm:
        params["prm"] = False
    return params
