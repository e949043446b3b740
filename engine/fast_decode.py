"""One decode step (one new token per row) of a Llama-family model without transformers' layers.

A search keeps few rows live (MCTS 3-5, beam 4-13), and at such batches the Countdown policy's
decode step was mostly fixed cost, not arithmetic: in a py-spy profile of MCTS@4096 the matmuls
were 30% of the samples, while RMSNorm, rotary embedding, mask building and module-call overhead
took as much again. This step does the same computation in fewer, larger operations: the q/k/v
and gate/up projections each as one matmul (their weights re-laid out as views of one tensor, so
no memory is added and the transformers modules, which still run a dense model's prefill, read
the same storage), `F.rms_norm`, rotary embedding applied to q and k together, and a boolean padding mask
for `scaled_dot_product_attention`. The logits equal transformers' within float rounding
(tests/engine/test_fast_decode.py). Each projection is held as engine/decode_weights.py says:
the model's own dense weight (the default), or packed int4 with an 8-bit head, per model.

The same layers also run a quantised model's prompt pass (`FusedDecode.prefill`, one sequence's
tokens with a causal mask), so its prompts are computed with the weights its tokens are.

Other architectures (and Llama variants this step does not reproduce exactly: other activations,
MLP or output biases) decode through the model's own forward (`ModelDecode`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, PreTrainedModel

from engine.decode_weights import DecodeWeights, Projection, head_projection, layer_projection

FUSED_ARCHITECTURES = frozenset({"llama", "qwen2"})


class DecodeStep(Protocol):
    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: DynamicCache, mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, V) for `ids` (B,) at `positions` (B,); appends their KV to `cache`.
        `mask` (B, W) is 1 over each row's valid cached tokens and the new one (W = width + 1)."""
        ...


class ModelDecode:
    """The model's own forward pass: right for every architecture transformers runs."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model

    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: DynamicCache, mask: torch.Tensor
    ) -> torch.Tensor:
        out = self.model(
            input_ids=ids.unsqueeze(1),
            past_key_values=cache,
            attention_mask=mask,
            position_ids=positions.unsqueeze(1),
            use_cache=True,
        )
        return out.logits[:, -1]


@dataclass
class _Layer:
    input_norm: torch.Tensor
    qkv: Projection
    out: Projection
    post_norm: torch.Tensor
    gate_up: Projection
    down: Projection

    def projections(self) -> list[Projection]:
        return [self.qkv, self.out, self.gate_up, self.down]


class FusedDecode:
    def __init__(self, model: PreTrainedModel, weights: DecodeWeights = "dense") -> None:
        config = model.config
        inner: Any = model.model
        self.num_heads = int(config.num_attention_heads)
        self.num_kv_heads = int(getattr(config, "num_key_value_heads", None) or self.num_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.num_heads)
        self.hidden = int(config.hidden_size)
        self.intermediate = int(config.intermediate_size)
        self.eps = float(config.rms_norm_eps)
        self.weights = weights
        self.embed = inner.embed_tokens.weight
        self.rotary = inner.rotary_emb
        self.norm = inner.norm.weight
        self.lm_head = head_projection(weights, model.lm_head.weight)  # type: ignore[union-attr]
        self.layers = [_fuse(layer, weights) for layer in inner.layers]

    def projections(self) -> list[Projection]:
        return [p for layer in self.layers for p in layer.projections()] + [self.lm_head]

    @property
    def is_quantised(self) -> bool:
        return self.weights != "dense"

    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, cache: DynamicCache, mask: torch.Tensor
    ) -> torch.Tensor:
        batch = ids.shape[0]
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, W)
        h = self._layers(
            ids,
            positions,
            cache,
            keep,
            to_heads=lambda x: x.unsqueeze(2),  # (B, heads, D) -> (B, heads, 1, D)
            from_heads=lambda att: att.reshape(batch, -1),
        )
        return self.lm_head(F.rms_norm(h, (self.hidden,), self.norm, self.eps))

    def prefill(self, ids: torch.Tensor, start: int, cache: DynamicCache) -> None:
        """Appends the KV of `ids` (T,), one sequence's tokens from position `start`, to `cache`:
        the prompt pass of a quantised model, on the weights its decode steps use."""
        num_tokens = ids.shape[0]
        positions = torch.arange(start, start + num_tokens)
        causal = torch.ones(num_tokens, start + num_tokens, dtype=torch.bool).tril(start)
        self._layers(
            ids,
            positions,
            cache,
            causal[None, None],  # (1, 1, T, start + T)
            to_heads=lambda x: x.transpose(0, 1).unsqueeze(0),  # (T, heads, D) -> (1, heads, T, D)
            from_heads=lambda att: att[0].transpose(0, 1).reshape(num_tokens, -1),
        )

    def _layers(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: DynamicCache,
        keep: torch.Tensor,
        to_heads: Callable[[torch.Tensor], torch.Tensor],
        from_heads: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The residual stream (N, hidden) after every layer, for N tokens that are rows of a
        decode batch or positions of one prompt: `to_heads`/`from_heads` lay out attention."""
        rows, heads, kv_heads, dim = ids.shape[0], self.num_heads, self.num_kv_heads, self.head_dim
        h = F.embedding(ids, self.embed)  # (N, hidden)
        cos, sin = self.rotary(h, positions.unsqueeze(1))  # (N, 1, D) each
        half = dim // 2
        sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)  # rotate_half's sign, folded in
        is_gqa = kv_heads != heads
        entries: list[Any] = list(cache.layers)
        for layer, entry in zip(self.layers, entries, strict=True):
            x = F.rms_norm(h, (self.hidden,), layer.input_norm, self.eps)
            qkv = layer.qkv(x).view(rows, heads + 2 * kv_heads, dim)
            qk = qkv[:, : heads + kv_heads]
            swapped = torch.cat((qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos + swapped * sin
            q = to_heads(qk[:, :heads])
            k = to_heads(qk[:, heads:])
            v = to_heads(qkv[:, heads + kv_heads :])
            keys, values = entry.update(k, v)
            att = F.scaled_dot_product_attention(q, keys, values, attn_mask=keep, enable_gqa=is_gqa)
            h = h + layer.out(from_heads(att))
            x = F.rms_norm(h, (self.hidden,), layer.post_norm, self.eps)
            gate, up = layer.gate_up(x).split(self.intermediate, dim=-1)
            h = h + layer.down(F.silu(gate) * up)
        return h


def decode_step(model: PreTrainedModel, weights: DecodeWeights = "dense") -> DecodeStep:
    """The fused step where it reproduces the model exactly, else the model's own forward.
    `weights` other than dense need the fused step: ValueError for a model without one."""
    if is_fusable(model):
        return FusedDecode(model, weights)
    if weights != "dense":
        raise ValueError(
            f"decode_weights = {weights!r} needs a fused decode step ({sorted(FUSED_ARCHITECTURES)} "
            f"with SiLU and no MLP or output biases); {model.config.model_type!r} decodes dense"
        )
    return ModelDecode(model)


def is_fusable(model: PreTrainedModel) -> bool:
    config = model.config
    if getattr(config, "model_type", None) not in FUSED_ARCHITECTURES:
        return False
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "mlp_bias", False):
        return False
    inner: Any = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "rotary_emb") or getattr(model, "lm_head", None) is None:
        return False
    attn = inner.layers[0].self_attn
    return attn.o_proj.bias is None and getattr(model.lm_head, "bias", None) is None  # type: ignore[union-attr]


def _fuse(layer: Any, weights: DecodeWeights) -> _Layer:
    attn: Any = layer.self_attn
    mlp: Any = layer.mlp
    qkv = _joined([attn.q_proj, attn.k_proj, attn.v_proj], weights)
    bias = None
    if attn.q_proj.bias is not None:
        bias = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]).detach()
    return _Layer(
        input_norm=layer.input_layernorm.weight,
        qkv=layer_projection(weights, qkv, bias),
        out=layer_projection(weights, attn.o_proj.weight),
        post_norm=layer.post_attention_layernorm.weight,
        gate_up=layer_projection(weights, _joined([mlp.gate_proj, mlp.up_proj], weights)),
        down=layer_projection(weights, mlp.down_proj.weight),
    )


def _joined(linears: list[nn.Linear], weights: DecodeWeights) -> torch.Tensor:
    """The linears' weights as one (sum of out_features, in) matrix: for dense, the storage the
    modules then read too; for a quantised step, a temporary the packed copy is made from, so
    the modules keep reading the loaded (memory-mapped) weights and no fp32 copy stays alive
    (SmolLM2 int4: 1,048 MB resident after building the step, against 1,311 with the copy)."""
    if weights == "dense":
        return _concat_in_place(linears)
    return torch.cat([lin.weight.detach() for lin in linears])


def _concat_in_place(linears: list[nn.Linear]) -> torch.Tensor:
    """One (sum of out_features, in) weight; each Linear's weight becomes a view into it, so the
    fused matmul and the modules share storage (no copy kept, in-place weight updates seen by both)."""
    fused = torch.cat([lin.weight.detach() for lin in linears])
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight.data = fused[start : start + rows]
        start += rows
    return fused
