"""Engine `TokenLogprob`s in the two OpenAI shapes: chat (`content: [...]`) and legacy completions."""

from __future__ import annotations

from collections.abc import Sequence

from engine.protocol import TokenLogprob
from server.responses import ChoiceLogprobs, CompletionLogprobs, TokenLogprobOut, TopLogprob


def _utf8(token: str) -> list[int]:
    return list(token.encode("utf-8", errors="replace"))


def chat_logprobs(logprobs: Sequence[TokenLogprob] | None, num_top: int) -> ChoiceLogprobs | None:
    """`{"content": [{token, logprob, bytes, top_logprobs}]}`, or None when none were asked for."""
    if logprobs is None:
        return None
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                token=item.token,
                logprob=item.logprob,
                bytes=_utf8(item.token),
                top_logprobs=[
                    TopLogprob(token=token, logprob=logprob, bytes=_utf8(token))
                    for _, token, logprob in item.top[:num_top]
                ],
            )
            for item in logprobs
        ]
    )


def completion_logprobs(
    logprobs: Sequence[TokenLogprob] | None, num_top: int, start_offset: int = 0
) -> CompletionLogprobs | None:
    """Parallel lists; `text_offset` counts characters from the start of the completion text."""
    if logprobs is None:
        return None
    result = CompletionLogprobs()
    offset = start_offset
    for item in logprobs:
        result.tokens.append(item.token)
        result.token_logprobs.append(item.logprob)
        result.top_logprobs.append({token: logprob for _, token, logprob in item.top[:num_top]})
        result.text_offset.append(offset)
        offset += len(item.token)
    return result
