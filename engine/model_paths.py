"""Models from the operator's own files: `PATH[=NAME]` arguments, GGUF conversion, folder checks.

A GGUF file is converted once into an HF folder (fp32 safetensors + tokenizer) under the cache
directory, keyed by the file's resolved path, size and modification time, so a changed file is
converted again and an unchanged one loads in a fraction of a second. A folder is checked at
start-up, file by file, so a missing or unreadable file stops the server with its name rather
than failing later inside an engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from engine.model_config import ModelSpec
from engine.weights import PICKLE_SUFFIXES, SAFE_WEIGHT_SUFFIX, require_safetensors

CONFIG_FILE = "config.json"
DEFAULT_WEIGHTS = "model.safetensors"
"""The file `save_pretrained` writes for an unsharded model: what a folder without weights lacks."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""A fast tokenizer ships `tokenizer.json`; `tokenizer_config.json` says which class loads it."""
SAFETENSORS_HEADER_BYTES = 8
"""A safetensors file begins with its header's length as a little-endian u64."""


def parse_model_arg(value: str) -> tuple[str, str]:
    """`PATH[=NAME]` -> (path, name); NAME defaults to the folder name or the file's stem."""
    path, sep, name = value.rpartition("=")
    if not sep:
        path, name = value, ""
    if not path:
        raise ValueError(f"{value!r}: give PATH or PATH=NAME")
    return path, name or Path(path.rstrip("/")).stem


def spec_from_arg(value: str, kind: str) -> ModelSpec:
    """The config entry `--model PATH[=NAME]` (kind generate) or `--prm ...` (reward) stands for."""
    path, name = parse_model_arg(value)
    try:
        return ModelSpec.model_validate({"name": name, "path": path, "kind": kind})
    except ValueError as exc:
        raise ValueError(f"--{'prm' if kind == 'reward' else 'model'} {value}: {exc}") from None


def check_model_folder(folder: Path) -> None:
    """Raise FileNotFoundError/ValueError naming the first missing or unreadable file of an HF
    folder: config.json, the safetensors weights (never pickles), the tokenizer."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (give an HF model folder or a .gguf file)")
    config = folder / CONFIG_FILE
    try:
        json.loads(config.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{config} is missing: {folder} is not an HF model folder") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {config}: {exc}") from None
    weight_files = sorted(folder.glob(f"*{SAFE_WEIGHT_SUFFIX}"))
    if not weight_files and not any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir()):
        raise FileNotFoundError(f"{folder / DEFAULT_WEIGHTS} is missing: {folder} has no *.safetensors")
    require_safetensors(folder)  # names the pickles of a folder that has only those
    for weights in weight_files:
        _check_safetensors(weights)
    _check_tokenizer(folder)


def _check_safetensors(file: Path) -> None:
    try:
        with file.open("rb") as handle:
            header = handle.read(SAFETENSORS_HEADER_BYTES)
    except OSError as exc:
        raise ValueError(f"cannot read {file}: {exc}") from None
    if len(header) < SAFETENSORS_HEADER_BYTES:
        raise ValueError(f"{file} is truncated: not a safetensors file")


def _check_tokenizer(folder: Path) -> None:
    present = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    if not present:
        raise FileNotFoundError(f"{folder / TOKENIZER_FILES[0]} is missing: the folder has no tokenizer")
    from transformers import AutoTokenizer

    try:
        AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # transformers raises many kinds for a bad tokenizer file
        names = ", ".join(str(p) for p in present)
        raise ValueError(f"cannot load the tokenizer from {names}: {exc}") from None


def gguf_cache_key(file: Path) -> str:
    """Changes whenever the file is replaced or rewritten: its resolved path, size and mtime."""
    stat = file.stat()
    identity = f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def converted_gguf_dir(gguf_file: Path, target: Path) -> Path:
    """`target`, an HF folder converted from `gguf_file` unless it already holds one."""
    if (target / CONFIG_FILE).is_file():
        return target
    if not gguf_file.is_file():
        raise FileNotFoundError(f"{gguf_file} is missing")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename: a crash mid-write never leaves a half folder.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        convert_gguf(gguf_file, tmp)
        os.replace(tmp, target)
    except OSError:
        if (target / CONFIG_FILE).is_file():  # another process won the race
            return target
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf(gguf_file: Path, out: Path) -> None:
    """De-quantize a GGUF causal LM into an fp32 safetensors folder with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_file.parent, gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The weights are de-quantized to fp32 on load; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
