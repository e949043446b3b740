"""A new version on the vLLM engine that is already running: its weights reloaded in place.

A second `AsyncLLM` beside the first doubles the GPU memory a swap needs (weights and the KV pool
both). RL frameworks update vLLM the other way, and so does this: `collective_rpc("reload_weights")`
loads the new safetensors into every worker's model where it sits, then `reset_prefix_cache`
drops every KV block computed by the old weights.

Each version keeps its own engine object over the one `AsyncLLM`, so the server's leases still
say which version a request started on. The successor takes new requests at once but holds them
before they reach vLLM; the pool reloads only when the last request on the old version is done,
so no request, and no search's branch, ever runs on weights it did not start with.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from safetensors import safe_open

from engine.hf_text import EngineNotStartedError
from engine.weights import SAFE_WEIGHT_SUFFIX, require_safetensors

logger = logging.getLogger("ponder.engine")

ARCHITECTURE_KEYS = (
    "model_type",
    "architectures",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)
"""config.json fields two versions must share to reload in place (the engine's buffers, KV layout
and kernels were built for them)."""


class IncompatibleWeightsError(ValueError):
    """A new version whose architecture or tensors differ from the running one's: it cannot be
    loaded into the running engine."""


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape in `folder`'s safetensors files, read from their headers."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(folder.glob(f"*{SAFE_WEIGHT_SUFFIX}")):
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = tuple(weights.get_slice(name).get_shape())
    return shapes


def check_reloadable(current: Path, new: Path) -> None:
    """Raise `IncompatibleWeightsError` unless `new` can replace `current`'s weights in place."""
    require_safetensors(new)
    old_config = json.loads((current / "config.json").read_text())
    new_config = json.loads((new / "config.json").read_text())
    changed = [k for k in ARCHITECTURE_KEYS if old_config.get(k) != new_config.get(k)]
    if changed:
        raise IncompatibleWeightsError(f"{new}: config.json differs from the served version in {changed}")
    old_shapes, new_shapes = tensor_shapes(current), tensor_shapes(new)
    if old_shapes != new_shapes:
        differing = sorted(set(old_shapes.items()) ^ set(new_shapes.items()))[:3]
        raise IncompatibleWeightsError(f"{new}: its tensors differ from the served version's: {differing}")


class WeightsGate:
    """Holds a successor's requests until its weights are in the engine (or says why they never
    will be)."""

    def __init__(self, is_open: bool = True) -> None:
        self._opened = asyncio.Event()
        self._error: str | None = None
        if is_open:
            self._opened.set()

    def open(self) -> None:
        self._opened.set()

    def fail(self, why: str) -> None:
        self._error = why
        self._opened.set()

    async def wait(self, model_id: str) -> None:
        await self._opened.wait()
        if self._error is not None:
            raise EngineNotStartedError(f"{model_id}: its new version did not load ({self._error})")


async def reload_in_place(llm: Any, folder: Path) -> None:
    """Load `folder`'s weights into every worker of the running `llm`, then forget every cached
    KV block, since each was computed by the weights just replaced."""
    await llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
    if not await llm.reset_prefix_cache():
        # vLLM refuses while requests run; the pool reloads only after they finished.
        raise RuntimeError("vLLM did not reset its prefix cache after the reload")
    logger.info("reloaded %s into the running vLLM engine and reset its prefix cache", folder)
