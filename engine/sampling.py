"""Next-token choice for a batch whose rows each have their own sampling parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.protocol import SamplingParams


@dataclass(frozen=True)
class Sampled:
    token_id: int
    logprob: float  # under the model's own distribution (temperature 1, no truncation)
    top: tuple[tuple[int, float], ...]


def make_generator(params: SamplingParams, index: int) -> torch.Generator | None:
    """Sample `index` of a seeded request gets its own stream: same seed, same outputs."""
    if params.seed is None or params.is_greedy:
        return None
    gen = torch.Generator()
    gen.manual_seed((params.seed * 1_000_003 + index) % (2**63))
    return gen


def sample_rows(
    logits: torch.Tensor,  # (B, V)
    params: list[SamplingParams],
    generators: list[torch.Generator | None],
) -> list[Sampled]:
    logprobs = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
    out: list[Sampled] = []
    for row, p in enumerate(params):
        token = _choose(logits[row].float(), p, generators[row])
        top: tuple[tuple[int, float], ...] = ()
        if p.top_logprobs:
            values, ids = logprobs[row].topk(p.top_logprobs)
            top = tuple(zip(ids.tolist(), values.tolist(), strict=True))
        out.append(Sampled(token, float(logprobs[row, token]), top))
    return out


def _choose(logits: torch.Tensor, p: SamplingParams, gen: torch.Generator | None) -> int:
    if p.is_greedy:
        return int(logits.argmax())
    scaled = logits / p.temperature
    if p.top_k > 0:
        kth = scaled.topk(min(p.top_k, scaled.numel())).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if p.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # keep the smallest set whose mass reaches top_p; the first token always stays, even for
        # a top_p that float32 rounds to 0 (it would otherwise drop every token: no distribution)
        drop = sorted_probs.cumsum(0) - sorted_probs >= p.top_p
        drop[0] = False
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=gen))
