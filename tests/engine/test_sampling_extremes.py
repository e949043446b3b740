"""Extreme but valid sampling values: a temperature or top_p near 0 must act as greedy, never NaN.

Both are accepted by the API (`temperature` >= 0, `top_p` > 0); before the fix, a temperature
like 1e-45 overflowed the scaled logits to inf (softmax: NaN) and a top_p that float32 rounds to
0 dropped every token, and either made `torch.multinomial` raise: a 500 for the caller.
"""

from __future__ import annotations

import pytest
import torch

from engine.protocol import GREEDY_TEMPERATURE, SamplingParams
from engine.sampling import make_generator, sample_rows

VOCAB = 4096
TINY = (1e-6, 1e-20, 1e-38, 1e-45, 5e-324)  # the last two are float32 / float64 subnormals


def logits_rows(num_rows: int) -> torch.Tensor:
    """Real-looking logits (B, V): spread like a model's, with a clear argmax per row."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(num_rows, VOCAB, generator=gen) * 8.0  # (B, V)


def sample_once(logits: torch.Tensor, params: SamplingParams) -> int:
    return sample_rows(logits[None], [params], [make_generator(params, 0)])[0].token_id


@pytest.mark.parametrize("temperature", TINY)
@pytest.mark.parametrize("seed", [None, 7])
def test_tiny_temperature_is_greedy(temperature: float, seed: int | None) -> None:
    params = SamplingParams(temperature=temperature, seed=seed)
    for row in logits_rows(8):
        assert sample_once(row, params) == int(row.argmax())


@pytest.mark.parametrize("top_p", TINY)
@pytest.mark.parametrize("temperature", [0.7, 1.0, 2.0])
def test_tiny_top_p_keeps_only_the_top_token(top_p: float, temperature: float) -> None:
    params = SamplingParams(temperature=temperature, top_p=top_p, seed=3)
    for row in logits_rows(8):
        assert sample_once(row, params) == int(row.argmax())


def test_greedy_threshold_is_where_sampling_starts() -> None:
    """Just above the threshold the row still samples (a seeded draw off the argmax exists)."""
    assert SamplingParams(temperature=GREEDY_TEMPERATURE / 2).is_greedy
    assert not SamplingParams(temperature=GREEDY_TEMPERATURE).is_greedy
    flat = torch.zeros(VOCAB)  # uniform: any temperature > 0 draws all over the vocabulary
    draws = {sample_once(flat, SamplingParams(temperature=1.0, seed=s)) for s in range(8)}
    assert len(draws) > 1


def test_huge_logits_with_tiny_temperature_give_finite_logprobs() -> None:
    logits = logits_rows(1)[0] * 1e4  # (V,) magnitudes near 1e5
    params = SamplingParams(temperature=1e-30, logprobs=True, top_logprobs=3)
    sampled = sample_rows(logits[None], [params], [None])[0]
    assert sampled.token_id == int(logits.argmax())
    assert all(torch.isfinite(torch.tensor(lp)) for _, lp in sampled.top)
