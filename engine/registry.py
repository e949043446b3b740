"""Engine backends by name. Backends are imported lazily: vLLM is an optional extra."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from engine.options import EngineOptions
from engine.protocol import Engine

EngineFactory = Callable[[str, EngineOptions], Engine]

# name -> "module:function"; the function takes (model_id, options) and returns an Engine.
ENGINE_BACKENDS: dict[str, str] = {
    "embedded": "engine.embedded:create_embedded_engine",
    "vllm": "engine.vllm:create_vllm_engine",
}


def get_engine_factory(backend: str) -> EngineFactory:
    if backend not in ENGINE_BACKENDS:
        raise ValueError(f"unknown engine {backend!r}; valid engines: {sorted(ENGINE_BACKENDS)}")
    module_name, func_name = ENGINE_BACKENDS[backend].split(":")
    factory: EngineFactory = getattr(importlib.import_module(module_name), func_name)
    return factory


def create_engine(backend: str, model_id: str, options: EngineOptions | None = None) -> Engine:
    """A not-yet-started engine serving `model_id`; call `await engine.start()` before use."""
    return get_engine_factory(backend)(model_id, options or EngineOptions())
