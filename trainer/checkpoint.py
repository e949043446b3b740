"""Atomic checkpoints and model folders: write to a temp path, then rename.

A crash mid-write leaves the previous checkpoint or model intact, never a torn file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to `path.tmp`, fsync, then os.replace onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Tensors and plain containers only (weights_only), never arbitrary pickles."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def save_model_folder(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    extra_json: dict[str, dict[str, Any]] | None = None,
) -> None:
    """save_pretrained (safetensors) + tokenizer + small json files into a temp folder, then swap."""
    out = out.resolve()
    tmp = out.with_name(f".{out.name}.tmp")
    old = out.with_name(f".{out.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    for name, payload in (extra_json or {}).items():
        (tmp / name).write_text(json.dumps(payload, indent=2) + "\n")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def weights_digest(folder: Path) -> str:
    """Short sha256 of a model folder's safetensors: names caches derived from those weights."""
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return digest[:12]
