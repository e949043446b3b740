"""The version store on real folders: publish, verify, the CURRENT pointer, rollback, seeding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.versions import MANIFEST_FILE, VersionError, VersionStore, read_manifest, verify_folder

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "countdown"
BUNDLED = Path("unversioned-countdown")
"""The shipped folder without its manifest (an unversioned folder seeds version 0); the fixture
makes it under tmp_path and these tests run from there."""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VersionStore:
    shutil.copytree(SHIPPED, tmp_path / BUNDLED, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    monkeypatch.chdir(tmp_path)
    return VersionStore(tmp_path / "store")


def test_seed_then_publish_serves_the_new_version_with_its_parent(store: VersionStore) -> None:
    seeded = store.seed_from("countdown", BUNDLED)
    manifest = store.publish("countdown", BUNDLED, parent=seeded, data={"examples": 7})
    assert manifest.version == seeded + 1 and manifest.parent == seeded
    assert store.current("countdown") == manifest.version
    assert store.history("countdown") == [seeded, manifest.version]
    on_disk = verify_folder(store.folder("countdown", manifest.version))
    assert on_disk.data == {"examples": 7} and "model.safetensors" in on_disk.files
    assert on_disk.label == f"countdown-v{manifest.version}"


def test_seeding_twice_keeps_what_is_served(store: VersionStore) -> None:
    first = store.seed_from("countdown", BUNDLED)
    store.publish("countdown", BUNDLED, parent=first)
    assert store.seed_from("countdown", BUNDLED) == first + 1


def test_a_changed_weight_file_is_refused_naming_it(store: VersionStore) -> None:
    store.seed_from("countdown", BUNDLED)
    manifest = store.publish("countdown", BUNDLED, parent=0, make_current=False)
    weights = store.folder("countdown", manifest.version) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(VersionError, match="model.safetensors"):
        store.set_current("countdown", manifest.version)
    assert store.current("countdown") == 0


def test_a_shipped_manifest_keeps_its_version_number(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED, shipped, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    VersionStore(tmp_path / "first").publish("countdown", shipped, parent=6, version=7, make_current=False)
    versioned = VersionStore(tmp_path / "first").folder("countdown", 7)
    store = VersionStore(tmp_path / "fresh")
    assert store.seed_from("countdown", versioned) == 7
    assert verify_folder(store.folder("countdown", 7)).parent == 6


def test_a_folder_without_weights_cannot_be_published(store: VersionStore, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(VersionError, match="no safetensors"):
        store.publish("countdown", empty, parent=None)
    assert store.versions("countdown") == []


def test_rollback_walks_the_history_back(store: VersionStore) -> None:
    store.seed_from("countdown", BUNDLED)
    store.publish("countdown", BUNDLED, parent=0)
    store.publish("countdown", BUNDLED, parent=1)
    assert store.rollback("countdown") == 1
    assert store.rollback("countdown") == 0
    with pytest.raises(VersionError, match="no earlier version"):
        store.rollback("countdown")


def test_a_crashed_publish_leaves_no_version_and_is_cleaned_up(store: VersionStore) -> None:
    store.seed_from("countdown", BUNDLED)
    half = store.model_root("countdown") / ".tmp-v0001"
    shutil.copytree(BUNDLED, half)  # what a kill between copy and rename leaves
    assert store.versions("countdown") == [0]
    store.publish("countdown", BUNDLED, parent=0)
    assert not half.exists() and store.versions("countdown") == [0, 1]


def test_an_unversioned_folder_has_no_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns(MANIFEST_FILE))
    assert read_manifest(folder) is None
    with pytest.raises(VersionError, match="no manifest.json"):
        verify_folder(folder)
