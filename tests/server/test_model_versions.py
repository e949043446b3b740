"""Which version a server serves, decided on a real store in a temp folder (no server), and the
lease book that keeps a replaced engine open while requests still run on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.embedded import EmbeddedEngine
from engine.models import is_available, resolve_model_dir
from engine.options import EngineOptions
from engine.versions import CURRENT_FILE, VersionError, VersionStore
from server.leases import LeaseBook, released_on_error
from server.model_versions import ModelVersions, is_versioned
from tests.server.swap_helpers import POLICY, publish_broken, publish_folder

pytestmark = pytest.mark.skipif(not is_available(POLICY), reason="countdown weights absent")


@pytest.fixture
def versions(tmp_path: Path) -> ModelVersions:
    return ModelVersions(VersionStore(tmp_path / "versions"), [POLICY, "smollm2-135m-instruct"])


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("countdown", True),
        ("countdown-prm", True),
        ("countdown-checker", True),
        ("smollm2-135m-instruct", False),
    ],
)
def test_repo_models_are_versioned_and_the_gguf_package_is_not(model_id: str, expected: bool) -> None:
    assert is_versioned(model_id) is expected


def test_open_seeds_an_empty_store_with_the_bundled_folder(versions: ModelVersions) -> None:
    assert versions.model_ids == (POLICY,)
    manifest = versions.open(POLICY)
    assert versions.store.history(POLICY) == [manifest.version]
    assert versions.label(POLICY) == manifest.label == f"{POLICY}-v{manifest.version}"
    assert versions.folder_for(POLICY) == versions.store.folder(POLICY, manifest.version)
    assert versions.folder_for("smollm2-135m-instruct") is None
    assert versions.numbers() == {POLICY: manifest.version}


def test_open_falls_back_down_history_to_the_newest_version_that_verifies(
    versions: ModelVersions, tmp_path: Path
) -> None:
    seeded = versions.open(POLICY)
    good = publish_folder(versions.store, POLICY, resolve_model_dir(POLICY))
    publish_broken(versions.store, POLICY, "sha256", tmp_path)
    assert versions.open(POLICY) == good
    (versions.store.folder(POLICY, good.version) / "model.safetensors").write_bytes(b"not weights")
    assert versions.open(POLICY) == seeded
    (versions.store.folder(POLICY, seeded.version) / "config.json").unlink()
    with pytest.raises(VersionError, match="no version .* verifies"):
        versions.open(POLICY)


def test_pending_names_a_new_current_until_it_is_served_or_refused(versions: ModelVersions) -> None:
    versions.open(POLICY)
    assert versions.pending(POLICY) is None
    first = publish_folder(versions.store, POLICY, resolve_model_dir(POLICY))
    assert versions.pending(POLICY) == first.version
    versions.refuse(POLICY, first.version)
    assert versions.pending(POLICY) is None  # the watcher does not retry it
    second = publish_folder(versions.store, POLICY, resolve_model_dir(POLICY))
    assert versions.pending(POLICY) == second.version
    versions.accept(versions.verify(POLICY, second.version))
    assert versions.pending(POLICY) is None and versions.refused == {}


def test_a_folder_holding_another_version_or_an_unreadable_current_is_refused(
    versions: ModelVersions,
) -> None:
    versions.open(POLICY)
    first = publish_folder(versions.store, POLICY, resolve_model_dir(POLICY))
    versions.store.folder(POLICY, first.version).rename(versions.store.folder(POLICY, 7))
    with pytest.raises(VersionError, match=f"holds {first.label}, not {POLICY}-v7"):
        versions.verify(POLICY, 7)
    (versions.store.model_root(POLICY) / CURRENT_FILE).write_text("{half a json")
    with pytest.raises(VersionError, match="CURRENT.json cannot be read"):
        versions.pending(POLICY)


def test_a_lease_is_given_back_once_and_the_engine_waits_for_the_last() -> None:
    book = LeaseBook()
    old, new = (EmbeddedEngine(POLICY, EngineOptions()) for _ in range(2))
    first, second = book.acquire(old), book.acquire(old)
    first.release()
    first.release()  # idempotent: a stream's generator and its background task both release
    assert (book.num_held(old), book.num_held(new)) == (1, 0)
    with pytest.raises(ValueError), released_on_error(second):
        raise ValueError("a 400 after the lease was taken")
    assert book.num_held(old) == 0 and not second.is_held

    async def wait_for_last_lease() -> tuple[bool, bool]:
        third = book.acquire(old)
        timed_out = await book.wait_released(old, 0.1)
        asyncio.get_running_loop().call_later(0.1, third.release)
        return timed_out, await book.wait_released(old, 5.0)

    assert asyncio.run(wait_for_last_lease()) == (False, True)
