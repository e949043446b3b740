"""The protocol's SamplingParams mapped onto vLLM's, and vLLM's outputs back onto the protocol.

Kept apart from `engine.vllm` so the mapping is a set of pure functions: no engine, no event
loop, testable wherever vllm imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm import SamplingParams as VllmSamplingParams  # type: ignore[import-not-found]
from vllm.sampling_params import RequestOutputKind  # type: ignore[import-not-found]

from engine.protocol import FinishReason, SamplingParams, TokenLogprob

VLLM_TOP_K_DISABLED = 0
"""vLLM 0.32 normalises both 0 and -1 to "top-k off"; 0 matches the protocol's meaning."""
SAMPLED_TOKEN_ONLY = 0
"""`logprobs=0` makes vLLM return the sampled token's logprob alone: enough for the cumulative
logprob the search needs (step priors, the no-PRM score) even when the caller wants none."""


def to_vllm_params(params: SamplingParams, is_streaming: bool) -> Any:
    """vLLM SamplingParams for one protocol request (`temperature == 0` is greedy in both)."""
    return VllmSamplingParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k if params.top_k > 0 else VLLM_TOP_K_DISABLED,
        max_tokens=params.max_new_tokens,
        stop=list(params.stop),
        seed=params.seed,
        logprobs=params.top_logprobs if params.logprobs else SAMPLED_TOKEN_ONLY,
        include_stop_str_in_output=params.include_stop_str_in_output,
        ignore_eos=params.ignore_eos,
        output_kind=RequestOutputKind.DELTA if is_streaming else RequestOutputKind.FINAL_ONLY,
    )


def finish_reason(vllm_reason: str | None) -> FinishReason | None:
    """vLLM says "stop" for EOS and for a stop string, "length" at max_tokens or at the end of the
    context, "abort" when aborted; None while the sample is still running."""
    if vllm_reason is None:
        return None
    if vllm_reason in ("stop", "length", "abort"):
        return vllm_reason  # type: ignore[return-value]
    return "stop"


def stop_string(stop_reason: object) -> str | None:
    """The stop string that ended a sample; vLLM reports an int when a stop *token* (EOS) did."""
    return stop_reason if isinstance(stop_reason, str) else None


def token_logprobs(
    token_ids: Sequence[int], vllm_logprobs: Sequence[dict[int, Any]] | None, num_top: int
) -> list[TokenLogprob]:
    """Per-token logprobs with the `num_top` most likely alternatives, best first.

    vLLM's dict for one position holds the top-k and the sampled token (each a `Logprob` with
    `logprob`, `rank` and `decoded_token`); the sampled one may rank anywhere.
    """
    result: list[TokenLogprob] = []
    for token_id, options in zip(token_ids, vllm_logprobs or [], strict=False):
        sampled = options[token_id]
        ranked = sorted(options.items(), key=lambda item: item[1].logprob, reverse=True)[:num_top]
        top = tuple((tid, lp.decoded_token or "", float(lp.logprob)) for tid, lp in ranked)
        result.append(TokenLogprob(token_id, sampled.decoded_token or "", float(sampled.logprob), top))
    return result
