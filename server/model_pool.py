"""Which models this process serves, and the started engine behind each generative one.

Reward models (the PRM) are not served by an `Engine`; they are listed so clients can discover
them, and a chat request to one is refused with a 400 that says why.

Requests reach an engine through a lease (`lease`), never by looking it up and keeping it: a
hot swap (`swap`) starts the new version's engine beside the old one, switches to it in one
assignment on the event loop, and closes the old one once the last request on it has finished.
On vLLM it reloads the weights into the running engine instead (`engine.vllm_reload`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.models import BUNDLED_MODELS, find_model, is_available, known_model_ids
from engine.options import EngineOptions
from engine.protocol import Engine, ReloadsInPlace
from engine.registry import create_engine
from server.errors import invalid_request, model_not_found, not_ready
from server.leases import EngineLease, LeaseBook
from server.model_versions import ModelVersions
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
    """The models to serve: those named (bundled or registered with `engine.models.register_models`),
    or by default every bundled model whose weights exist.

    A model named explicitly but without weights is an error (the operator asked for it); the
    default skips it with a log line, since repo weights may still be training.
    """
    is_default = not requested
    generate_ids: list[str] = []
    reward_ids: list[str] = []
    for model_id in requested or list(BUNDLED_MODELS):
        model = find_model(model_id)
        if model is None:
            raise ValueError(f"unknown model {model_id!r}; known models: {known_model_ids()}")
        if not is_available(model_id):
            if not is_default:
                raise ValueError(f"model {model_id!r} has no weights yet; it cannot be served")
            logger.info("not serving %s: its weights are not present", model_id)
            continue
        target = reward_ids if model.kind == "reward" else generate_ids
        if model_id not in target:
            target.append(model_id)
    if not generate_ids:
        raise ValueError("no generative model to serve; give one with --model PATH or --models")
    return ServePlan(tuple(generate_ids), tuple(reward_ids))


class ModelPool:
    """model id -> started `Engine`; `start` runs in the background so /health answers meanwhile.

    `versions` (None: serve the bundled folders) says which published version of each versioned
    model to load; a replaced engine is closed once its leases are back, or after
    `retire_after_s` (the request timeout) at the latest.
    """

    def __init__(
        self,
        plan: ServePlan,
        backend: str,
        options: EngineOptions,
        versions: ModelVersions | None = None,
        retire_after_s: float = 600.0,
    ) -> None:
        self.plan = plan
        self.backend = backend
        self.options = options
        self.versions = versions
        self.retire_after_s = retire_after_s
        self.engines: dict[str, Engine] = {}
        self.leases = LeaseBook()
        self.retiring: set[asyncio.Task[None]] = set()
        self.failure: str | None = None
        self.created = now_s()

    @property
    def is_ready(self) -> bool:
        return len(self.engines) == len(self.plan.generate_ids)

    async def start(self) -> None:
        """Pick each versioned model's version, then create and start every engine, one at a
        time (they share the same cores)."""
        if self.versions is not None:
            try:
                await asyncio.to_thread(self.versions.open_all)
            except Exception:
                self.failure = "no servable version of a model in the version store; see the server log"
                raise
        for model_id in self.plan.generate_ids:
            try:
                self.engines[model_id] = await self._start_one(model_id)
            except Exception:
                self.failure = f"the engine for {model_id!r} failed to start; see the server log"
                raise
            card = self.engines[model_id].card
            logger.info("serving %s %r (max_context=%d)", model_id, card.version, card.max_context)

    async def _start_one(self, model_id: str, folder: Path | None = None) -> Engine:
        if folder is None and self.versions is not None:
            folder = self.versions.folder_for(model_id)
        model = find_model(model_id)
        backend = (model.engine if model is not None else None) or self.backend
        engine = create_engine(backend, model_id, self.options, folder)
        try:
            await engine.start()
        except BaseException:  # a failed or cancelled start must not leave a half-loaded engine
            await _close_quietly(model_id, engine)
            raise
        return engine

    async def swap(self, model_id: str, folder: Path) -> Engine:
        """Serve `model_id` from `folder`: start the new engine beside the old one (a failure
        leaves the old one serving), switch new requests to it, retire the old one. An engine
        that reloads in place (vLLM, unless `vllm_swap` is "beside") takes the weights itself."""
        old = self.engines.get(model_id)
        if isinstance(old, ReloadsInPlace) and self.options.vllm_swap == "in-place":
            return await self._swap_in_place(model_id, old, folder)
        engine = await self._start_one(model_id, folder)
        self.engines[model_id] = engine  # one assignment: a request leases one or the other
        if old is not None:
            task = asyncio.create_task(self._close_when_released(model_id, old))
            self.retiring.add(task)
            task.add_done_callback(self.retiring.discard)
        return engine

    async def _swap_in_place(self, model_id: str, old: ReloadsInPlace, folder: Path) -> Engine:
        """New requests go to the successor at once and wait there; the weights are reloaded
        when the old version's last request has finished (or is aborted at `retire_after_s`)."""
        new = await old.successor(folder)  # refuses an incompatible folder: `old` keeps serving
        assert isinstance(new, Engine) and isinstance(old, Engine)
        self.engines[model_id] = new
        drained = await self.leases.wait_released(old, self.retire_after_s)
        if not drained:
            logger.warning("aborting %d requests on the replaced %s", self.leases.num_held(old), model_id)
        try:
            await new.take_over(abort_running=not drained)
        except BaseException:
            self.engines[model_id] = old
            raise
        return new

    async def _close_when_released(self, model_id: str, engine: Engine) -> None:
        """Close a replaced engine (and with it its prefix cache) once no request runs on it."""
        try:
            if not await self.leases.wait_released(engine, self.retire_after_s):
                logger.warning(
                    "closing the replaced %s engine with %d requests still on it",
                    model_id,
                    self.leases.num_held(engine),
                )
        finally:
            await _close_quietly(model_id, engine)
            logger.info("closed the replaced engine of %s %s", model_id, engine.card.version)

    async def close(self) -> None:
        for task in list(self.retiring):
            task.cancel()
        await asyncio.gather(*self.retiring, return_exceptions=True)
        engines, self.engines = self.engines, {}
        for model_id, engine in engines.items():
            await _close_quietly(model_id, engine)

    def lease(self, model_id: str) -> EngineLease:
        """A hold on the current engine of a request's `model` (or the ApiError that explains
        why there is none); release it when the response ends."""
        return self.leases.acquire(self.engine_for(model_id))

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
                version=(engine.card.version or None) if engine else self._version_label(model_id),
            )
            for model_id in self.plan.generate_ids
        ]
        listed += [
            ModelObject(
                id=model_id, created=self.created, kind="reward", version=self._version_label(model_id)
            )
            for model_id in self.plan.reward_ids
        ]
        return listed

    def _version_label(self, model_id: str) -> str | None:
        return None if self.versions is None else self.versions.label(model_id)


async def _close_quietly(model_id: str, engine: Engine) -> None:
    """Close one engine; a failure to close one must not keep the others open."""
    try:
        await engine.close()
    except Exception:
        logger.exception("closing the engine for %s failed", model_id)
