"""The model table's schema and its file loader: one format for the bundled models
(`models/bundled.toml`) and for an operator's `--config FILE`.

A file lists `[[models]]` entries (TOML; YAML with a `.yaml`/`.yml` suffix when PyYAML is
importable). Each entry is validated by `ModelSpec` (unknown keys are errors, so a typo never
silently falls back to a default) and becomes a frozen `ModelEntry`, what the rest of the code
reads. Relative paths are relative to the file's folder.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.registry import ENGINE_BACKENDS
from rewards.aggregation import AGGREGATIONS

ModelKind = Literal["generate", "reward"]
DecodeWeights = Literal["dense", "int4"]
"""How the embedded engine's decode step holds a policy's weights (engine/decode_weights.py)."""
ModelSource = Literal["folder", "gguf_file", "gguf_package"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
"""What a served model id may be: it appears in URLs, metric labels and the version store."""
YAML_SUFFIXES = (".yaml", ".yml")
GGUF_SUFFIX = ".gguf"


class ModelSpec(BaseModel):
    """One served model as a config file states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="the id requests use as `model`")
    path: str = Field(min_length=1, description="an HF folder with safetensors, or a .gguf file")
    package: str | None = Field(None, description="`path` is a file inside this installed package")
    kind: ModelKind = Field("generate", description="generate (a policy) or reward (a PRM)")
    engine: str | None = Field(None, description="engine backend for this model; unset: --engine")
    max_context: int | None = Field(None, ge=16, description="cap on the model's context (tokens)")
    chat_template: str | None = Field(None, description="a Jinja chat-template file to use instead")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="default sampling temperature")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="default nucleus sampling mass")
    top_k: int | None = Field(None, ge=1, description="default top-k")
    reply_tokens: int | None = Field(None, ge=1, description="typical reply length; sizes searches")
    prm: str | None = Field(None, description="the served PRM that guides this policy's searches")
    task: str | None = Field(None, description="the rewards.tasks task this policy answers")
    aggregate: str | None = Field(None, description="a PRM's step aggregation: min, last, product, mean")
    versioned: bool = Field(False, description="served from the version store the learner publishes to")
    threads: int | None = Field(
        None, ge=1, description="torch threads (and cores) of its passes on the embedded engine; unset: all"
    )
    decode_weights: DecodeWeights = Field(
        "dense", description="embedded decode step's weights: dense, or int4 (exact for a Q4_1 GGUF)"
    )

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str | None) -> str | None:
        if value is not None and value not in ENGINE_BACKENDS:
            raise ValueError(f"unknown engine {value!r}; valid engines: {sorted(ENGINE_BACKENDS)}")
        return value

    @field_validator("aggregate")
    @classmethod
    def _known_aggregate(cls, value: str | None) -> str | None:
        if value is not None and value not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {value!r}; valid: {sorted(AGGREGATIONS)}")
        return value

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str | None) -> str | None:
        from rewards.tasks import TASKS  # lazily: math_verify is slow to import

        if value is not None and value not in TASKS:
            raise ValueError(f"unknown task {value!r}; valid tasks: {sorted(TASKS)}")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> ModelSpec:
        """A PRM neither samples nor is guided; a policy has no step aggregation."""
        if self.kind == "reward":
            wrong = [k for k in ("prm", "temperature", "top_p", "top_k", "chat_template") if getattr(self, k)]
            if self.decode_weights != "dense":
                wrong.append("decode_weights")
            if wrong:
                raise ValueError(f"a reward model takes no {', '.join(wrong)}")
        elif self.aggregate is not None:
            raise ValueError("aggregate is a reward model's setting (kind = 'reward')")
        return self


class ModelsFile(BaseModel):
    """A whole config file: `[[models]]` entries with distinct names."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _distinct_names(cls, value: list[ModelSpec]) -> list[ModelSpec]:
        names = [spec.name for spec in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"model names appear more than once: {repeated}")
        return value


@dataclass(frozen=True)
class ModelEntry:
    """A served model, as the engines, the pool and search read it. `path` is absolute, or the
    file name inside `package` for a GGUF shipped in a Python package."""

    model_id: str
    kind: ModelKind
    source: ModelSource
    path: str
    package: str | None = None
    sampling: tuple[tuple[str, float], ...] = ()
    reply_tokens: int | None = None
    aggregate: str | None = None  # a PRM's best step aggregation
    prm: str | None = None  # the PRM that guides a policy's searches and learns with it
    task: str | None = None  # the task a policy answers (rewards.tasks)
    engine: str | None = None
    max_context: int | None = None
    chat_template: Path | None = None
    versioned: bool = False
    threads: int | None = None  # torch threads of its passes; None: --num-threads, else every core
    decode_weights: DecodeWeights = "dense"  # the embedded decode step's weights


def entry_from_spec(spec: ModelSpec, base: Path) -> ModelEntry:
    """The entry for `spec`, its relative paths resolved against `base` (the file's folder)."""
    if spec.package is not None:
        source: ModelSource = "gguf_package"
        path = spec.path
    else:
        resolved = _resolve(spec.path, base)
        source = "gguf_file" if resolved.suffix == GGUF_SUFFIX else "folder"
        path = str(resolved)
    sampling = tuple(
        (key, float(value))
        for key in ("temperature", "top_p", "top_k")
        if (value := getattr(spec, key)) is not None
    )
    return ModelEntry(
        model_id=spec.name,
        kind=spec.kind,
        source=source,
        path=path,
        package=spec.package,
        sampling=sampling,
        reply_tokens=spec.reply_tokens,
        aggregate=spec.aggregate,
        prm=spec.prm,
        task=spec.task,
        engine=spec.engine,
        max_context=spec.max_context,
        chat_template=None if spec.chat_template is None else _resolve(spec.chat_template, base),
        versioned=spec.versioned,
        threads=spec.threads,
        decode_weights=spec.decode_weights,
    )


def load_model_config(file: Path | str) -> list[ModelEntry]:
    """The entries of a TOML (or YAML) model config; ValueError naming the file and the field."""
    file = Path(file)
    try:
        raw = _read(file)
        parsed = ModelsFile.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{file}: {_describe(exc)}") from None
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read the model config {file}: {exc}") from None
    return entries_from_specs(parsed.models, file.resolve().parent)


def entries_from_specs(specs: Sequence[ModelSpec], base: Path) -> list[ModelEntry]:
    return [entry_from_spec(spec, base) for spec in specs]


def _read(file: Path) -> Any:
    text = file.read_text()
    if file.suffix.lower() in YAML_SUFFIXES:
        try:
            import yaml
        except ImportError:
            raise ValueError("YAML configs need PyYAML (pip install PyYAML); or write TOML") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"invalid YAML: {exc}") from None
    return tomllib.loads(text)


def _describe(exc: ValidationError) -> str:
    """pydantic's errors as `models[1].temperature: Input should be ... (got 7)` lines."""
    lines = []
    for error in exc.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        message = re.sub(r"^Value error, ", "", str(error["msg"]))
        got = "" if error["type"] == "missing" else f" (got {error.get('input')!r})"
        lines.append(f"{where or 'file'}: {message}{got}")
    return "; ".join(lines)


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate).resolve()
