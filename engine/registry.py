"""Engine backends by name. Backends are imported lazily: vLLM is an optional extra."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from engine.options import EngineOptions
from engine.protocol import Engine

EngineFactory = Callable[[str, EngineOptions, Path | None], Engine]

# name -> "module:function"; the function takes (model_id, options, model_dir) and returns an
# Engine. `model_dir` None: the bundled model's own folder (`engine.models.resolve_model_dir`).
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


def create_engine(
    backend: str, model_id: str, options: EngineOptions | None = None, model_dir: Path | None = None
) -> Engine:
    """A not-yet-started engine serving `model_id`, from `model_dir` when given (a published
    version of it, `engine.versions`); call `await engine.start()` before use."""
    return get_engine_factory(backend)(model_id, options or EngineOptions(), model_dir)
