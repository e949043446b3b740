"""Which model ids a server serves, from its settings: bundled ones, or the operator's own.

With no --model/--prm/--config, the bundled models are served (all, or those --models names).
With any of them, the operator's models are served, plus only the bundled ones --models names:
asking for your own model should not also load four bundled ones. Every file is checked here,
before anything listens, so a missing or unreadable file exits the server with its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from engine.model_config import ModelEntry, entries_from_specs, load_model_config
from engine.model_paths import check_model_folder, spec_from_arg
from engine.models import BUNDLED_MODELS, register_models, resolve_model_dir
from server.settings import ServerSettings


def requested_model_ids(settings: ServerSettings) -> list[str]:
    """The ids to serve (for `plan_models`); the operator's own models are checked and registered.
    Raises ValueError naming the bad setting or file."""
    if not settings.names_own_models():
        return list(settings.models)
    entries = own_model_entries(settings)
    _check_names(entries, settings.models)
    for entry in entries:
        check_entry(entry)
    register_models(entries)
    own_ids = [entry.model_id for entry in entries]
    _check_paired_prms(entries, [*own_ids, *settings.models])
    return [*own_ids, *settings.models]


def own_model_entries(settings: ServerSettings) -> list[ModelEntry]:
    """--config's entries, then --model and --prm (paths relative to the working directory);
    a single --prm guides every --model that names no PRM of its own."""
    entries = load_model_config(settings.config) if settings.config else []
    specs = [spec_from_arg(value, "generate") for value in settings.model]
    specs += [spec_from_arg(value, "reward") for value in settings.prm]
    from_flags = entries_from_specs(specs, Path.cwd())
    if len(settings.prm) == 1:
        prm_id = from_flags[-1].model_id
        from_flags = [
            dataclasses.replace(e, prm=prm_id) if e.kind == "generate" and e.prm is None else e
            for e in from_flags
        ]
    return entries + from_flags


def check_entry(entry: ModelEntry) -> None:
    """Raise ValueError naming the first missing or unreadable file of an operator's model."""
    try:
        if entry.source == "gguf_file" and not Path(entry.path).is_file():
            raise FileNotFoundError(f"{entry.path} is missing")
        folder = Path(entry.path) if entry.source == "folder" else resolve_model_dir(entry.model_id)
        check_model_folder(folder)
        if entry.chat_template is not None:
            entry.chat_template.read_text()
        if entry.kind == "reward":
            from rewards.prm import detect_style

            detect_style(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model {entry.model_id!r}: {exc}") from None


def _check_names(entries: Sequence[ModelEntry], bundled: Sequence[str]) -> None:
    names = [entry.model_id for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1} | (set(names) & set(bundled)))
    if repeated:
        raise ValueError(f"more than one model is named {repeated}; name them apart with PATH=NAME")
    unknown = [name for name in bundled if name not in BUNDLED_MODELS]
    if unknown:
        raise ValueError(f"--models names no bundled model {unknown}; bundled: {sorted(BUNDLED_MODELS)}")


def _check_paired_prms(entries: Sequence[ModelEntry], served: Sequence[str]) -> None:
    """A policy's `prm` must be served here: a search would otherwise run unguided, silently."""
    for entry in entries:
        if entry.prm is not None and entry.prm not in served:
            raise ValueError(
                f"model {entry.model_id!r} is paired with the PRM {entry.prm!r}, which is not served "
                f"(served: {list(served)})"
            )
