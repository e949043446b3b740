"""Every weight load refuses a pickle: a folder with `pytorch_model.bin` and no safetensors fails
with an error naming the file, before anything is unpickled."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.embedded import EmbeddedEngine
from engine.options import EngineOptions
from engine.weights import UnsafeWeightsError
from rewards.prm import load_prm

REPO_ROOT = Path(__file__).resolve().parents[2]


def pickled_copy(model: str, out: Path) -> Path:
    """The bundled model's folder, its weights re-saved as a pickled `pytorch_model.bin`."""
    source = REPO_ROOT / "models" / model
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(source / "model.safetensors"), out / "pytorch_model.bin")
    return out


def test_embedded_engine_refuses_a_pickle(tmp_path: Path) -> None:
    engine = EmbeddedEngine("countdown", EngineOptions(), model_dir=pickled_copy("countdown", tmp_path / "m"))
    with pytest.raises(UnsafeWeightsError, match="pytorch_model.bin"):
        asyncio.run(engine.start())


def test_prm_loader_refuses_a_pickle(tmp_path: Path) -> None:
    with pytest.raises(UnsafeWeightsError, match="pytorch_model.bin"):
        load_prm(pickled_copy("countdown-prm", tmp_path / "prm"))


def test_safetensors_folder_loads(tmp_path: Path) -> None:
    engine = EmbeddedEngine("countdown", EngineOptions(), model_dir=REPO_ROOT / "models" / "countdown")
    asyncio.run(engine.start())
    asyncio.run(engine.close())
