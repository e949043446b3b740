"""Which models this process serves, and the started engine behind each generative one.

Reward models (the PRM) are not served by an `Engine`; they are listed so clients can discover
them, and a chat request to one is refused with a 400 that says why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from engine.models import BUNDLED_MODELS, is_available
from engine.options import EngineOptions
from engine.protocol import Engine
from engine.registry import create_engine
from server.errors import invalid_request, model_not_found, not_ready
from server.responses import ModelObject, now_s

logger = logging.getLogger("ponder.server")


@dataclass(frozen=True)
class ServePlan:
    generate_ids: tuple[str, ...]
    reward_ids: tuple[str, ...]

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.generate_ids + self.reward_ids


def plan_models(requested: Sequence[str]) -> ServePlan:
    """The models to serve: those named, or by default every bundled model whose weights exist.

    A model named explicitly but without weights is an error (the operator asked for it); the
    default skips it with a log line, since repo weights may still be training.
    """
    is_default = not requested
    generate_ids: list[str] = []
    reward_ids: list[str] = []
    for model_id in requested or list(BUNDLED_MODELS):
        if model_id not in BUNDLED_MODELS:
            raise ValueError(f"unknown model {model_id!r}; bundled models: {sorted(BUNDLED_MODELS)}")
        if not is_available(model_id):
            if not is_default:
                raise ValueError(f"model {model_id!r} has no weights yet; it cannot be served")
            logger.info("not serving %s: its weights are not present", model_id)
            continue
        target = reward_ids if BUNDLED_MODELS[model_id].kind == "reward" else generate_ids
        if model_id not in target:
            target.append(model_id)
    if not generate_ids:
        raise ValueError("no generative model to serve; give one with --models")
    return ServePlan(tuple(generate_ids), tuple(reward_ids))


class ModelPool:
    """model id -> started `Engine`; `start` runs in the background so /health answers meanwhile."""

    def __init__(self, plan: ServePlan, backend: str, options: EngineOptions) -> None:
        self.plan = plan
        self.backend = backend
        self.options = options
        self.engines: dict[str, Engine] = {}
        self.failure: str | None = None
        self.created = now_s()

    @property
    def is_ready(self) -> bool:
        return len(self.engines) == len(self.plan.generate_ids)

    async def start(self) -> None:
        """Create and start every engine, one at a time (they share the same cores)."""
        for model_id in self.plan.generate_ids:
            try:
                self.engines[model_id] = await self._start_one(model_id)
            except Exception:
                self.failure = f"the engine for {model_id!r} failed to start; see the server log"
                raise
            logger.info("serving %s (max_context=%d)", model_id, self.engines[model_id].card.max_context)

    async def _start_one(self, model_id: str) -> Engine:
        engine = create_engine(self.backend, model_id, self.options)
        try:
            await engine.start()
        except BaseException:  # a failed or cancelled start must not leave a half-loaded engine
            await _close_quietly(model_id, engine)
            raise
        return engine

    async def close(self) -> None:
        engines, self.engines = self.engines, {}
        for model_id, engine in engines.items():
            await _close_quietly(model_id, engine)

    def engine_for(self, model_id: str) -> Engine:
        """The started engine for a request's `model`, or the ApiError that explains why not."""
        if model_id in self.plan.reward_ids:
            raise invalid_request(
                f"The model '{model_id}' is a reward model: it scores reasoning steps and cannot "
                "generate completions.",
                "model",
                "model_not_generative",
            )
        if model_id not in self.plan.generate_ids:
            raise model_not_found(model_id, self.plan.model_ids)
        engine = self.engines.get(model_id)
        if engine is None:
            raise not_ready(model_id)
        return engine

    def model_objects(self) -> list[ModelObject]:
        listed = [
            ModelObject(
                id=model_id,
                created=self.created,
                max_model_len=engine.card.max_context if (engine := self.engines.get(model_id)) else None,
            )
            for model_id in self.plan.generate_ids
        ]
        listed += [
            ModelObject(id=model_id, created=self.created, kind="reward") for model_id in self.plan.reward_ids
        ]
        return listed


async def _close_quietly(model_id: str, engine: Engine) -> None:
    """Close one engine; a failure to close one must not keep the others open."""
    try:
        await engine.close()
    except Exception:
        logger.exception("closing the engine for %s failed", model_id)
