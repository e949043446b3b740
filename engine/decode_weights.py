"""How the fused decode step holds its weights: dense (the model's own), or weight-only int4.

A decode step at batch 1 reads every weight once per token, so on a CPU its time is memory
traffic, not arithmetic: SmolLM2-135M in fp32 reads about 540 MB per token, and its 49k-row output
head alone took 7.6 ms of a 40 ms step. torch ships CPU kernels for weight-only int4 (group-wise
scales and zero points) and int8 (one scale per row) matmuls; they are fast only with bf16
activations (the int4 one took 0.09 ms with bf16 input and 4.4 ms with fp32), so each projection
casts its input to bf16 and its output back, and the residual stream, norms, rotary embedding
and attention stay fp32.

Int4 groups are 32 weights with an asymmetric min/max grid: GGUF's Q4_1 layout. Weights that were
de-quantised from a Q4_1 GGUF (the bundled SmolLM2) land back on exactly the same grid (largest
change 0.0), so int4 decode computes with the very weights the file holds. Other weights lose
precision; `quantization_error` reports by how much, and the engine logs it at load.
The output head (tied to the Q8_0 token embedding in SmolLM2) is kept at 8 bits, one scale per row.

An int4 model's prompts go through the same fused layers and packed weights (the kernel is
1.3-2.5x fp32's at prompt sizes too); dense models prefill through transformers' modules
(engine/prefill.py's `prefill_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from engine.model_config import DecodeWeights

INT4_GROUP = 32
"""Weights per scale/zero pair: GGUF's Q4_0/Q4_1 block size."""
_INNER_K_TILES = 2  # the CPU int4 kernel's packing parameter (2, 4 or 8; 2 accepts any K % 32 == 0)
_INT4_MAX = 15
_INT8_MAX = 127


class Projection(Protocol):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) float32 -> (..., out) float32."""
        ...


@dataclass(frozen=True)
class Dense:
    """The model's own weight, shared with its transformers module (no copy)."""

    weight: torch.Tensor
    bias: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


@dataclass(frozen=True)
class Int4:
    """Group-32 asymmetric int4, packed for torch's CPU kernel."""

    packed: torch.Tensor
    scales_and_zeros: torch.Tensor  # (in / 32, out, 2) bf16
    bias: torch.Tensor | None
    error: float  # largest |w - dequantised w| over the whole weight

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Int4:
        rows, cols = weight.shape
        if cols % INT4_GROUP:
            raise ValueError(f"int4 decode needs input widths divisible by {INT4_GROUP}, got {cols}")
        groups = weight.detach().float().reshape(rows, cols // INT4_GROUP, INT4_GROUP)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / _INT4_MAX).clamp_min(torch.finfo(torch.float32).tiny)
        q = ((groups - low[..., None]) / scale[..., None]).round().clamp(0, _INT4_MAX)
        error = (q * scale[..., None] + low[..., None] - groups).abs().max().item()
        packed = torch._convert_weight_to_int4pack_for_cpu(
            q.to(torch.int32).reshape(rows, cols), _INNER_K_TILES
        )
        # The kernel computes (q - 8) * scale + zero, so the zero point is low + 8 * scale.
        zeros = low + (_INT4_MAX + 1) / 2 * scale
        scales_and_zeros = torch.stack([scale, zeros], dim=-1).transpose(0, 1).contiguous()
        return cls(packed, scales_and_zeros.to(torch.bfloat16), _detached(bias), error)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch._weight_int4pack_mm_for_cpu(flat, self.packed, INT4_GROUP, self.scales_and_zeros)
        y = y.float().reshape(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


@dataclass(frozen=True)
class Int8Rows:
    """Symmetric int8 with one scale per output row."""

    weight: torch.Tensor  # (out, in) int8
    scales: torch.Tensor  # (out,) bf16
    error: float

    @classmethod
    def from_weight(cls, weight: torch.Tensor) -> Int8Rows:
        dense = weight.detach().float()
        scale = (dense.abs().amax(-1) / _INT8_MAX).clamp_min(torch.finfo(torch.float32).tiny)
        q = (dense / scale[:, None]).round().clamp(-_INT8_MAX, _INT8_MAX)
        error = (q * scale[:, None] - dense).abs().max().item()
        return cls(q.to(torch.int8).contiguous(), scale.to(torch.bfloat16), error)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch._weight_int8pack_mm(flat, self.weight, self.scales)
        return y.float().reshape(*x.shape[:-1], -1)


def layer_projection(
    mode: DecodeWeights, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> Projection:
    """A transformer layer's projection held as `mode` says."""
    return Int4.from_weight(weight, bias) if mode == "int4" else Dense(weight, bias)


def head_projection(mode: DecodeWeights, weight: torch.Tensor) -> Projection:
    """The output head held as `mode` says: 8 bits under int4 (a 4-bit head moves the argmax)."""
    return Int8Rows.from_weight(weight) if mode == "int4" else Dense(weight)


def quantization_error(projections: list[Projection]) -> float:
    """The largest weight change any quantised projection made; 0.0 for dense ones."""
    return max((float(getattr(p, "error", 0.0)) for p in projections), default=0.0)


def _detached(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach()
