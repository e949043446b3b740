"""Versioned model folders: the contract between the learner that publishes weights and the
server that hot-swaps them.

Layout of a store (`--model-store`, default `.cache/versions`):

    <store>/<model_id>/v0003/          a complete model folder plus `manifest.json`
    <store>/<model_id>/CURRENT.json    {"version": 3, "history": [2, 3]}: what is served

A version is written into a hidden temp folder, fsynced and renamed into place, and only then
does `CURRENT.json` (itself replaced atomically) point at it. A reader therefore sees either the
old version or the whole new one, never a half-written folder; a crash mid-publish leaves only a
`.tmp-*` folder that the next publish removes. `history` is the stack `rollback` pops.

A model folder outside the store (the bundled `models/countdown`) may carry a `manifest.json`
too: it is the version a fresh store starts from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT.json"
WEIGHT_SUFFIXES = (".safetensors", ".gguf")
"""Files whose sha256 a manifest records; weights load from these formats only."""
HASHED_FILES = ("config.json", "tokenizer.json")
"""Small files that change what the weights mean, hashed with them."""


class VersionError(ValueError):
    """A version that must not be served: missing, incomplete, or not what its manifest says."""


@dataclass(frozen=True)
class Manifest:
    """What one published version is and where it came from."""

    model_id: str
    version: int
    parent: int | None
    files: dict[str, str]
    """file name -> sha256 hex of every weight file (and config/tokenizer)."""
    created: float = field(default_factory=time.time)
    data: dict[str, Any] = field(default_factory=dict)
    """What the version was trained on (problems, solved, pairs, ...)."""
    eval: dict[str, Any] = field(default_factory=dict)
    """The gate's figures against the parent."""
    note: str = ""

    @property
    def label(self) -> str:
        """The version as responses show it (`system_fingerprint`)."""
        return f"{self.model_id}-v{self.version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        return cls(
            model_id=str(raw["model_id"]),
            version=int(raw["version"]),
            parent=None if raw.get("parent") is None else int(raw["parent"]),
            files={str(k): str(v) for k, v in dict(raw["files"]).items()},
            created=float(raw.get("created", 0.0)),
            data=dict(raw.get("data", {})),
            eval=dict(raw.get("eval", {})),
            note=str(raw.get("note", "")),
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashed_files(folder: Path) -> dict[str, str]:
    """sha256 of the folder's weight files and of the files that give them meaning."""
    names = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in HASHED_FILES)
    )
    if not any(Path(n).suffix in WEIGHT_SUFFIXES for n in names):
        raise VersionError(f"{folder} holds no safetensors or GGUF weights")
    return {name: sha256_file(folder / name) for name in names}


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None where it has none (an unversioned model folder)."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise VersionError(f"{path} is not a valid manifest: {exc}") from None


def verify_folder(folder: Path) -> Manifest:
    """The folder's manifest once every file it lists matches its sha256; VersionError naming
    the first file that is missing or differs."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise VersionError(f"{folder} has no {MANIFEST_FILE}")
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise VersionError(f"{path} is missing (listed in the manifest)")
        if sha256_file(path) != expected:
            raise VersionError(f"{path} does not match its manifest's sha256")
    return manifest


def write_atomically(path: Path, text: str) -> None:
    """Write to a sibling temp file, fsync it, rename over `path`, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


@dataclass(frozen=True)
class VersionStore:
    """Published versions of every model under one root folder."""

    root: Path

    def model_root(self, model_id: str) -> Path:
        return self.root / model_id

    def folder(self, model_id: str, version: int) -> Path:
        return self.model_root(model_id) / f"v{version:04d}"

    def versions(self, model_id: str) -> list[int]:
        """Every complete version on disk, oldest first (temp folders are not versions)."""
        base = self.model_root(model_id)
        if not base.is_dir():
            return []
        found = [p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("v")]
        return sorted(int(name[1:]) for name in found if name[1:].isdigit())

    def history(self, model_id: str) -> list[int]:
        """The served versions, oldest first; the last one is current. Empty: nothing published."""
        path = self.model_root(model_id) / CURRENT_FILE
        if not path.is_file():
            return []
        raw = json.loads(path.read_text())
        return [int(v) for v in raw.get("history", [raw["version"]])]

    def current(self, model_id: str) -> int | None:
        history = self.history(model_id)
        return history[-1] if history else None

    def current_folder(self, model_id: str) -> Path | None:
        version = self.current(model_id)
        return None if version is None else self.folder(model_id, version)

    def publish(
        self,
        model_id: str,
        source: Path,
        parent: int | None,
        data: dict[str, Any] | None = None,
        eval: dict[str, Any] | None = None,
        note: str = "",
        make_current: bool = True,
        version: int | None = None,
    ) -> Manifest:
        """Copy `source` in as `version` (default: the next number) with its manifest; then, if
        asked, serve it."""
        base = self.model_root(model_id)
        base.mkdir(parents=True, exist_ok=True)
        for stale in base.glob(".tmp-*"):  # a publish that crashed half-way
            shutil.rmtree(stale, ignore_errors=True)
        if version is None:
            version = max([*self.versions(model_id), parent or 0]) + 1
        if self.folder(model_id, version).exists():
            raise VersionError(f"{model_id} version {version} is already published")
        tmp = base / f".tmp-v{version:04d}"
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(MANIFEST_FILE, ".*"))
        manifest = Manifest(
            model_id=model_id,
            version=version,
            parent=parent,
            files=hashed_files(tmp),
            data=data or {},
            eval=eval or {},
            note=note,
        )
        (tmp / MANIFEST_FILE).write_text(manifest.to_json())
        _fsync_tree(tmp)
        os.replace(tmp, self.folder(model_id, version))
        fsync_dir(base)
        if make_current:
            self.set_current(model_id, version)
        return manifest

    def set_current(self, model_id: str, version: int) -> None:
        """Serve `version` next (it must be a complete, verified version)."""
        verify_folder(self.folder(model_id, version))
        history = [v for v in self.history(model_id) if v != version] + [version]
        body = json.dumps({"version": version, "history": history}) + "\n"
        write_atomically(self.model_root(model_id) / CURRENT_FILE, body)

    def rollback(self, model_id: str) -> int:
        """Serve the version before the current one; VersionError when there is none."""
        history = self.history(model_id)
        if len(history) < 2:
            raise VersionError(f"{model_id} has no earlier version to roll back to")
        previous = history[-2]
        body = json.dumps({"version": previous, "history": history[:-1]}) + "\n"
        write_atomically(self.model_root(model_id) / CURRENT_FILE, body)
        return previous

    def seed_from(self, model_id: str, bundled: Path) -> int:
        """Publish a bundled folder as the store's first version if the store serves none yet;
        returns the version served. The bundled manifest's version number is kept."""
        current = self.current(model_id)
        if current is not None:
            return current
        shipped = read_manifest(bundled)
        version = 0 if shipped is None else shipped.version
        if not self.folder(model_id, version).is_dir():
            self.publish(
                model_id,
                bundled,
                parent=None if shipped is None else shipped.parent,
                data={} if shipped is None else shipped.data,
                eval={} if shipped is None else shipped.eval,
                note="the bundled version",
                make_current=False,
                version=version,
            )
        self.set_current(model_id, version)
        return version
