"""Which published version of each versioned model this server serves, read from the store.

Versioned models are the bundled ones that ship as folders in the repo (`source == "repo"`: the
puzzle policy and its PRMs): the offline learner publishes new versions of them into the
store (`engine.versions`), and the server serves `CURRENT.json`. SmolLM2 (a GGUF package) is not
versioned: its engines report version "" and responses fingerprint it with its model id.

Everything here is synchronous file work (copying, hashing); callers run it off the event loop.
The server only reads the store, except for `rollback`, which an admin asks for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from engine.models import find_model, resolve_model_dir
from engine.versions import Manifest, VersionError, VersionStore, verify_folder

logger = logging.getLogger("ponder.versions")


def is_versioned(model_id: str) -> bool:
    """Served from the version store (a repo folder the learner republishes), not a fixed file."""
    model = find_model(model_id)
    return model is not None and model.versioned


class ModelVersions:
    """The store, what each versioned model serves now, and which candidates were refused."""

    def __init__(self, store: VersionStore, model_ids: Sequence[str]) -> None:
        self.store = store
        self.model_ids = tuple(m for m in model_ids if is_versioned(m))
        self.served: dict[str, Manifest] = {}
        self.refused: dict[str, int] = {}
        """model id -> the version last refused; the watcher does not retry it."""

    # --- startup -----------------------------------------------------------------------------

    def open_all(self) -> None:
        for model_id in self.model_ids:
            self.open(model_id)

    def open(self, model_id: str) -> Manifest:
        """Seed the store from the bundled folder if it is empty, then serve the newest version
        of `history` that verifies (CURRENT itself unless it is damaged); VersionError if none."""
        self._seed(model_id)
        reasons: list[str] = []
        for version in reversed(self.store.history(model_id)):
            try:
                manifest = self.verify(model_id, version)
            except VersionError as exc:
                logger.warning("%s: not serving version %d: %s", model_id, version, exc)
                reasons.append(str(exc))
                continue
            if reasons:
                logger.warning("%s: serving %s, the newest version that verifies", model_id, manifest.label)
            self.served[model_id] = manifest
            return manifest
        raise VersionError(f"{model_id}: no version in {self.store.model_root(model_id)} verifies: {reasons}")

    def _seed(self, model_id: str) -> None:
        try:
            self.store.seed_from(model_id, resolve_model_dir(model_id))
        except (VersionError, OSError):
            if self.store.current(model_id) is None:  # not a race with another process seeding
                raise

    # --- queries -----------------------------------------------------------------------------

    def folder_for(self, model_id: str) -> Path | None:
        """The served version's folder; None for a model not served from the store."""
        manifest = self.served.get(model_id)
        return None if manifest is None else self.store.folder(model_id, manifest.version)

    def label(self, model_id: str) -> str | None:
        manifest = self.served.get(model_id)
        return None if manifest is None else manifest.label

    def numbers(self) -> dict[str, int]:
        """model id -> served version number (the `ponder_model_version` gauge)."""
        return {model_id: manifest.version for model_id, manifest in self.served.items()}

    def current(self, model_id: str) -> int:
        """The version CURRENT.json names; VersionError if it names none or cannot be read."""
        try:
            version = self.store.current(model_id)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VersionError(f"{model_id}: CURRENT.json cannot be read: {exc}") from None
        if version is None:
            raise VersionError(f"{model_id}: the store serves no version")
        return version

    def pending(self, model_id: str) -> int | None:
        """The version the watcher should swap to: CURRENT if it is neither served nor refused."""
        version = self.current(model_id)
        served = self.served.get(model_id)
        if (served is not None and served.version == version) or self.refused.get(model_id) == version:
            return None
        return version

    def verify(self, model_id: str, version: int) -> Manifest:
        """The version's manifest once every file matches it and it says what it is stored as."""
        manifest = verify_folder(self.store.folder(model_id, version))
        if (manifest.model_id, manifest.version) != (model_id, version):
            raise VersionError(
                f"{self.store.folder(model_id, version)} holds {manifest.label}, not {model_id}-v{version}"
            )
        return manifest

    # --- changes -----------------------------------------------------------------------------

    def accept(self, manifest: Manifest) -> None:
        self.served[manifest.model_id] = manifest
        self.refused.pop(manifest.model_id, None)

    def refuse(self, model_id: str, version: int) -> None:
        self.refused[model_id] = version
