"""Which weight files ponder will load: safetensors (and GGUF, converted from the bundled package),
never pickles. A pickle (`pytorch_model.bin`, `*.pt`) runs code when unpickled, and a model
folder may come from a learner, a volume or a download, so every load checks the folder first.
"""

from __future__ import annotations

from pathlib import Path

SAFE_WEIGHT_SUFFIX = ".safetensors"
# Formats torch.load or pickle read; `.bin` is transformers' pickled `pytorch_model.bin`.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})


class UnsafeWeightsError(ValueError):
    """A model folder whose weights are not safetensors: refused, never unpickled."""


def require_safetensors(folder: Path | str) -> None:
    """Raise `UnsafeWeightsError` unless `folder` holds safetensors weights; pickles are named."""
    folder = Path(folder)
    files = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if any(name.endswith(SAFE_WEIGHT_SUFFIX) for name in files):
        return
    pickles = [name for name in files if Path(name).suffix in PICKLE_SUFFIXES]
    found = f"only pickle weights ({', '.join(pickles)})" if pickles else "no weight files"
    raise UnsafeWeightsError(
        f"{folder} has {found}; ponder loads safetensors (model.safetensors) or a bundled GGUF only, "
        "never pickles: convert it with `save_pretrained(..., safe_serialization=True)`"
    )
