"""The fused decode step against transformers' forward: the same logits on left-padded batches
(bundled models, and random GQA Llama / biased Qwen2 models), weights shared, not copied."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from engine.decode_weights import Dense
from engine.fast_decode import FusedDecode, ModelDecode, decode_step
from engine.model_config import DecodeWeights
from tests.engine.decode_helpers import PROMPT_LENGTHS, bundled, padded_batch

STEPS = 6
SMALL = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 50,
}


def random_model(config_class: type, model_class: type, **extra: object) -> PreTrainedModel:
    torch.manual_seed(0)
    return model_class(config_class(**SMALL, **extra)).eval()


def decode_both(
    model: PreTrainedModel, vocab: int, weights: DecodeWeights = "dense"
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """STEPS greedy steps of the same batch through the model's forward and the fused step (each
    side feeding back its own argmax)."""
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, vocab, (n,), generator=generator).tolist() for n in PROMPT_LENGTHS]
    reference, fused = ModelDecode(model), FusedDecode(model, weights)
    results: list[list[torch.Tensor]] = []
    with torch.inference_mode():
        for step_fn in (reference, fused):
            batch = padded_batch(model, prompts)
            ids = torch.tensor([p[0] for p in prompts])  # any next token, at the next position
            positions = torch.tensor([len(p) for p in prompts])
            logits_seen = []
            for _ in range(STEPS):
                assert batch.cache is not None
                logits = step_fn(ids, positions, batch.cache, batch.attention_mask(extra=1))
                batch.grow()
                logits_seen.append(logits)
                ids, positions = logits.argmax(dim=-1), positions + 1
            results.append(logits_seen)
    return results[0], results[1]


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: bundled("countdown"), id="countdown"),
        pytest.param(
            lambda: random_model(LlamaConfig, LlamaForCausalLM, num_key_value_heads=2), id="llama-gqa"
        ),
        pytest.param(
            lambda: random_model(Qwen2Config, Qwen2ForCausalLM, num_key_value_heads=1), id="qwen2-bias"
        ),
    ],
)
def test_fused_step_equals_the_models_forward(model) -> None:  # type: ignore[no-untyped-def]
    model = model()
    reference, fused = decode_both(model, int(model.config.vocab_size))
    for ref, got in zip(reference, fused, strict=True):
        assert got.shape == ref.shape == (len(PROMPT_LENGTHS), model.config.vocab_size)
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
        assert torch.equal(got.argmax(-1), ref.argmax(-1))


def test_fused_step_on_smollm2() -> None:
    """30 layers, GQA (9 heads over 3), rope theta 100k: the shipped chat model decodes fused."""
    model = bundled("smollm2-135m-instruct")
    assert isinstance(decode_step(model), FusedDecode)
    reference, fused = decode_both(model, 1000)
    for ref, got in zip(reference, fused, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-3, rtol=1e-3)
        assert torch.equal(got.argmax(-1), ref.argmax(-1))


def test_fused_weights_are_views_of_the_modules_weights() -> None:
    model = random_model(LlamaConfig, LlamaForCausalLM, num_key_value_heads=2)
    attn = model.model.layers[0].self_attn
    step = FusedDecode(model)
    qkv = step.layers[0].qkv
    assert isinstance(qkv, Dense)
    fused_qkv = qkv.weight
    assert attn.q_proj.weight.data_ptr() == fused_qkv.data_ptr()
    assert attn.k_proj.weight.data_ptr() == fused_qkv[attn.q_proj.weight.shape[0] :].data_ptr()
    with torch.no_grad():  # an in-place weight update (a loaded state dict) reaches both
        attn.v_proj.weight.fill_(0.5)
    assert torch.all(fused_qkv[-attn.v_proj.weight.shape[0] :] == 0.5)


def test_other_architectures_decode_through_their_own_forward() -> None:
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=40)).eval()
    relu_llama = random_model(LlamaConfig, LlamaForCausalLM, hidden_act="relu")
    assert isinstance(decode_step(gpt2), ModelDecode)
    assert isinstance(decode_step(relu_llama), ModelDecode)
