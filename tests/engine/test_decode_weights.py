"""Weight-only int4 decode (engine/decode_weights.py): exact on a Q4_1 grid, close to the dense
model's logits on SmolLM2, and refused where the fused step cannot hold it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from engine.decode_weights import INT4_GROUP, Dense, Int4, Int8Rows, quantization_error
from engine.fast_decode import FusedDecode, ModelDecode, decode_step
from tests.engine.decode_helpers import PROMPT_LENGTHS, bundled, padded_batch

STEPS = 12
MAX_MEAN_KL = 0.02
"""Per-token KL(dense || int4) on SmolLM2, averaged; measured about 0.003 (bf16 activations and an
8-bit output head are the only differences from the dense decode)."""
MIN_TOP1_AGREEMENT = 0.85  # measured 34 of 36 rows; the misses were near-ties


def q4_1_weight(rows: int, cols: int) -> torch.Tensor:
    """Weights on a Q4_1 grid as a GGUF de-quantises them: per group of 32, q * d + m with fp16
    d and m, every group using its lowest and highest code."""
    generator = torch.Generator().manual_seed(0)
    groups = cols // INT4_GROUP
    q = torch.randint(0, 16, (rows, groups, INT4_GROUP), generator=generator).float()
    q[..., 0], q[..., 1] = 0, 15
    d = (torch.rand(rows, groups, 1, generator=generator) * 0.01 + 0.001).half().float()
    m = (torch.rand(rows, groups, 1, generator=generator) * -0.1).half().float()
    return (q * d + m).reshape(rows, cols)


def test_int4_holds_a_q4_1_grid_exactly_and_multiplies_like_bf16() -> None:
    weight, bias = q4_1_weight(96, 128), torch.randn(96)
    packed = Int4.from_weight(weight, bias)
    assert packed.error < 1e-6
    x = torch.randn(3, 128)
    expected = F.linear(x.bfloat16().float(), weight, bias)  # the weights are exact; x is rounded
    scale = expected.abs().max().item()  # the kernel's output is bf16: 8 bits of mantissa
    torch.testing.assert_close(packed(x), expected, atol=1e-2 * scale, rtol=2e-2)


def test_int4_of_arbitrary_weights_reports_its_error() -> None:
    weight = torch.randn(64, 64)
    packed = Int4.from_weight(weight)
    per_group_range = weight.reshape(64, 2, 32).aminmax(dim=-1)
    step = ((per_group_range.max - per_group_range.min) / 15).max().item()
    assert 0 < packed.error <= step / 2 + 1e-6  # rounding to the nearest code
    assert quantization_error([packed, Dense(weight)]) == packed.error


def test_int8_rows_round_each_row_to_its_own_scale() -> None:
    weight = torch.randn(40, 64) * torch.linspace(0.01, 10, 40)[:, None]  # rows of very different size
    head = Int8Rows.from_weight(weight)
    assert head.error <= (weight.abs().amax(-1) / 127 / 2).max().item() + 1e-6
    x = torch.randn(2, 64)
    torch.testing.assert_close(head(x), F.linear(x, weight), atol=0.05 * weight.abs().max().item(), rtol=0.05)


def test_int4_needs_widths_of_whole_groups() -> None:
    with pytest.raises(ValueError, match="divisible by 32"):
        Int4.from_weight(torch.randn(8, 48))


def test_smollm2_int4_decode_holds_the_ggufs_own_weights() -> None:
    """The GGUF's Q4_1 layers re-pack with no change at all; only the output head (Q8_0 in the
    file) is re-rounded, to 8 bits per row."""
    step = FusedDecode(bundled("smollm2-135m-instruct"), "int4")
    layers = [p for layer in step.layers for p in layer.projections()]
    assert all(isinstance(p, Int4) for p in layers)
    assert quantization_error(layers) == 0.0
    assert isinstance(step.lm_head, Int8Rows)


def test_smollm2_int4_logits_stay_close_to_the_dense_models() -> None:
    """Teacher-forced (both fed the dense model's argmax), so every step compares like with like."""
    model = bundled("smollm2-135m-instruct")
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 1000, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]
    dense, int4 = ModelDecode(model), FusedDecode(model, "int4")
    kls, agree = [], []
    with torch.inference_mode():
        a, b = padded_batch(model, prompts), padded_batch(model, prompts)
        ids = torch.tensor([p[0] for p in prompts])
        positions = torch.tensor([len(p) for p in prompts])
        for _ in range(STEPS):
            assert a.cache is not None and b.cache is not None
            want = dense(ids, positions, a.cache, a.attention_mask(extra=1))
            got = int4(ids, positions, b.cache, b.attention_mask(extra=1))
            a.grow(), b.grow()
            kl = F.kl_div(got.log_softmax(-1), want.log_softmax(-1), log_target=True, reduction="none")
            kls += kl.sum(-1).tolist()
            agree += (got.argmax(-1) == want.argmax(-1)).tolist()
            ids, positions = want.argmax(-1), positions + 1
    assert sum(kls) / len(kls) < MAX_MEAN_KL
    assert sum(agree) / len(agree) >= MIN_TOP1_AGREEMENT


def test_int4_is_refused_for_a_model_without_a_fused_step() -> None:
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=40)).eval()
    assert isinstance(decode_step(gpt2), ModelDecode)
    with pytest.raises(ValueError, match="needs a fused decode step"):
        decode_step(gpt2, "int4")
