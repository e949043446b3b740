"""Hot swap: serve the version the learner published, without dropping a request.

A swap verifies the candidate's files against its manifest, loads it beside the version being
served (an engine for a policy, a scorer for a PRM), and only then switches new requests to it;
requests already running finish on the version they started with (`server.leases`). A
candidate that does not verify or does not load is refused: the log says why, the old version
keeps serving, and the watcher does not try it again until CURRENT names another version.

Swaps come from the watcher (polling each model's CURRENT.json) and from the admin routes
(reload, rollback); one lock makes them take turns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.versions import VersionError
from server.model_pool import ModelPool
from server.model_versions import ModelVersions
from server.search_services import SearchServices

logger = logging.getLogger("ponder.hot_swap")


@dataclass(frozen=True)
class SwapOutcome:
    """What one model serves after a reload or rollback (labels such as "policy-v3")."""

    model: str
    version: str | None
    previous: str | None
    swapped: bool
    error: str | None = None


def describe(exc: BaseException) -> str:
    """Why a candidate was refused, in one line (the admin sees it; so does the log)."""
    return str(exc) or type(exc).__name__


class HotSwapper:
    def __init__(self, pool: ModelPool, search: SearchServices, versions: ModelVersions) -> None:
        self.pool = pool
        self.search = search
        self.versions = versions
        self._lock = asyncio.Lock()
        self._watch_errors: dict[str, str] = {}

    @property
    def model_ids(self) -> tuple[str, ...]:
        """The served models that hot-swap (the versioned ones)."""
        return self.versions.model_ids

    async def reload(self, model_ids: Sequence[str]) -> list[SwapOutcome]:
        """Swap each model to the version CURRENT names now (refused ones are tried again)."""
        return [await self.swap_to_current(model_id) for model_id in model_ids]

    async def swap_to_current(self, model_id: str) -> SwapOutcome:
        async with self._lock:
            try:
                version = await asyncio.to_thread(self.versions.current, model_id)
            except VersionError as exc:
                label = self.versions.label(model_id)
                logger.error("%s; %s keeps serving", exc, label)
                return SwapOutcome(model_id, label, label, swapped=False, error=str(exc))
            return await self._swap(model_id, version)

    async def rollback(self, model_id: str) -> SwapOutcome:
        """Point CURRENT back at the version before it and serve that; VersionError when there
        is no earlier version."""
        async with self._lock:
            version = await asyncio.to_thread(self.versions.store.rollback, model_id)
            logger.info("rollback: %s CURRENT is version %d again", model_id, version)
            return await self._swap(model_id, version)

    async def _swap(self, model_id: str, version: int) -> SwapOutcome:
        previous = self.versions.label(model_id)
        served = self.versions.served.get(model_id)
        if served is not None and served.version == version:
            return SwapOutcome(model_id, previous, previous, swapped=False)
        logger.info("hot swap: loading %s-v%d beside %s", model_id, version, previous)
        try:
            manifest = await asyncio.to_thread(self.versions.verify, model_id, version)
            await self._load(model_id, self.versions.store.folder(model_id, version))
        except Exception as exc:  # not a cancellation: that is a shutdown, not a bad candidate
            why = f"{model_id}-v{version} refused: {describe(exc)}"
            self.versions.refuse(model_id, version)
            logger.error("hot swap: %s; %s keeps serving", why, previous)
            return SwapOutcome(model_id, previous, previous, swapped=False, error=why)
        self.versions.accept(manifest)
        logger.info("hot swap: %s now serves %s (was %s)", model_id, manifest.label, previous)
        return SwapOutcome(model_id, manifest.label, previous, swapped=True)

    async def _load(self, model_id: str, folder: Path) -> None:
        if model_id in self.pool.plan.generate_ids:
            await self.pool.swap(model_id, folder)
        else:
            await self.search.swap_prm(model_id, folder)

    async def watch(self, interval_s: float) -> None:
        """Poll every versioned model's CURRENT.json and swap when it names a new version."""
        logger.info("watching %s every %g s for new versions", list(self.model_ids), interval_s)
        while True:
            await asyncio.sleep(interval_s)
            for model_id in self.model_ids:
                try:
                    await self._poll(model_id)
                except Exception:  # a store the watcher cannot read now must not stop it for good
                    logger.exception("watcher: checking %s failed", model_id)

    async def _poll(self, model_id: str) -> None:
        try:
            version = self.versions.pending(model_id)
        except VersionError as exc:  # an unreadable CURRENT: said once, not every poll
            if self._watch_errors.get(model_id) != str(exc):
                logger.error("watcher: %s", exc)
            self._watch_errors[model_id] = str(exc)
            return
        self._watch_errors.pop(model_id, None)
        if version is None:
            return
        async with self._lock:  # an admin reload may have swapped meanwhile
            if self.versions.pending(model_id) == version:
                await self._swap(model_id, version)
