"""The published-format PRM styles (Qwen2.5-Math-PRM, Math-Shepherd) on tiny random models.

Each model is built here, saved to a folder, and loaded back through `load_prm`, so the tests
run the real loaders; scores are checked against the model cards' own recipes on raw logits.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from transformers import (
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from rewards.prm import PRM_STYLES, MathShepherdPRM, QwenMathPRM, detect_style, load_prm
from rewards.prm_batching import PaddedBatchPRM
from rewards.prm_qwen import SYSTEM_PROMPT
from tests.rewards.tiny_models import TINY_SHAPE, UNK, build_tiny_qwen_prm, char_tokenizer

torch.set_num_threads(1)

SHEPHERD_SPECIALS = ["<unk>", "<s>", "</s>"]
SHEPHERD_TAG = "ки"

QUESTION = "What is 12 + 30 / 5?"
STEPS = ["30 / 5 = 6.", "12 + 6 = 18.", "The answer is \\boxed{18}."]
ITEMS = [
    (QUESTION, STEPS),
    ("What is 2 + 2?", ["2 + 2 = 4, so \\boxed{4}."]),
    (QUESTION, STEPS[:2]),
    ("Say why 1 < 2, at some length, please.", ["1 is left of 2 on the line.", "So 1 < 2."]),
]


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen_prm(tmp_path_factory.mktemp("qwen-prm"))


@pytest.fixture(scope="module")
def shepherd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shepherd-prm")
    tokenizer = char_tokenizer(SHEPHERD_SPECIALS, (SHEPHERD_TAG,), bos_token="<s>", eos_token="</s>")
    # Mistral's tokenizer prepends BOS; the recipe's ids include it, so ours must too.
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    bos = tokenizer.bos_token_id
    backend["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}},
    }
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(backend)),
        unk_token=UNK,
        bos_token="<s>",
        eos_token="</s>",
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        **TINY_SHAPE,
        bos_token_id=bos,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(1)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def qwen_custom_code_folder(qwen_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights behind an `auto_map` head that returns a bare tuple, as remote code may."""
    folder = tmp_path_factory.mktemp("qwen-prm-remote")
    shutil.copytree(qwen_folder, folder, dirs_exist_ok=True)
    (folder / "modeling_tuple_prm.py").write_text(
        "from transformers import Qwen2ForTokenClassification\n\n\n"
        "class TuplePRM(Qwen2ForTokenClassification):\n"
        "    def forward(self, input_ids=None, attention_mask=None, **kwargs):\n"
        "        return (super().forward(input_ids=input_ids, attention_mask=attention_mask).logits,)\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_tuple_prm.TuplePRM"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def qwen_card_scores(folder: Path, prompt: str, steps: list[str]) -> list[float]:
    """The Qwen2.5-Math-PRM model card's recipe, one solution, no padding."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    input_ids = tokenizer.encode(text, return_tensors="pt")
    with torch.no_grad():
        probs = model(input_ids=input_ids).logits.softmax(-1)[0, :, 1]  # (T,)
    return probs[input_ids[0] == tokenizer.encode("<extra_0>")[0]].tolist()


def shepherd_card_scores(folder: Path, prompt: str, steps: list[str]) -> list[float]:
    """The Math-Shepherd model card's recipe, one solution, no padding."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    candidate_tokens = tokenizer.encode("+ -")[1:][::2]  # bos and the space dropped
    step_tag_id = tokenizer.encode(SHEPHERD_TAG)[-1]
    input_ids = torch.tensor(
        [tokenizer.encode(prompt + " " + "\n".join(f"{s} {SHEPHERD_TAG}" for s in steps))]
    )
    with torch.no_grad():
        scores = model(input_ids).logits[:, :, candidate_tokens].softmax(-1)[:, :, 0]  # (1, T)
    return scores[input_ids == step_tag_id].tolist()


@pytest.fixture(scope="module", params=["qwen", "shepherd"])
def style_folder(request: pytest.FixtureRequest, qwen_folder: Path, shepherd_folder: Path) -> Path:
    return qwen_folder if request.param == "qwen" else shepherd_folder


def test_load_prm_detects_each_style(qwen_folder: Path, shepherd_folder: Path) -> None:
    assert detect_style(qwen_folder) == "qwen2.5-math-prm"
    assert detect_style(shepherd_folder) == "math-shepherd"
    assert isinstance(load_prm(qwen_folder), QwenMathPRM)
    assert isinstance(load_prm(shepherd_folder), MathShepherdPRM)
    assert isinstance(load_prm(qwen_folder, style="qwen2.5-math-prm"), QwenMathPRM)


def test_scores_are_probabilities_one_per_step(style_folder: Path) -> None:
    prm = load_prm(style_folder)
    for prompt, steps in ITEMS:
        scores = prm.score_steps(prompt, steps)
        assert len(scores) == len(steps)
        assert all(0.0 < s < 1.0 for s in scores)
    assert prm.score_steps(QUESTION, []) == []


CARD_RECIPES: dict[str, tuple[str, Callable[[Path, str, list[str]], list[float]]]] = {
    "qwen2.5-math-prm": ("qwen_folder", qwen_card_scores),
    "math-shepherd": ("shepherd_folder", shepherd_card_scores),
}


@pytest.mark.parametrize("style", sorted(CARD_RECIPES))
def test_scores_follow_the_model_card_recipe(style: str, request: pytest.FixtureRequest) -> None:
    fixture, card_scores = CARD_RECIPES[style]
    folder: Path = request.getfixturevalue(fixture)
    prm = load_prm(folder, style=style)
    for prompt, steps in ITEMS:
        expected = card_scores(folder, prompt, steps)
        assert len(expected) == len(steps)
        assert prm.score_steps(prompt, steps) == pytest.approx(expected, abs=1e-5)


def test_batched_scores_match_single_scores(style_folder: Path) -> None:
    prm = PRM_STYLES[detect_style(style_folder)](style_folder)
    assert isinstance(prm, PaddedBatchPRM)
    prm.batch_size = 3  # chunks of 3 and 1
    lengths = {len(prm.encode(*item).ids) for item in ITEMS}
    assert len(lengths) == len(ITEMS), "rows of different lengths, so padding is exercised"
    batched = prm.score_batch(ITEMS)
    for item, scores in zip(ITEMS, batched, strict=True):
        assert scores == pytest.approx(prm.score_steps(*item), abs=1e-5)


def test_prefix_scores_do_not_depend_on_later_steps(style_folder: Path) -> None:
    prm = load_prm(style_folder)
    assert prm.score_steps(QUESTION, STEPS)[:2] == pytest.approx(
        prm.score_steps(QUESTION, STEPS[:2]), abs=1e-5
    )


def test_custom_code_checkpoint_with_tuple_output(qwen_folder: Path, qwen_custom_code_folder: Path) -> None:
    remote = load_prm(qwen_custom_code_folder)
    assert isinstance(remote, QwenMathPRM)
    assert type(remote.model).__name__ == "TuplePRM"
    expected = load_prm(qwen_folder).score_batch(ITEMS)
    for scores, reference in zip(remote.score_batch(ITEMS), expected, strict=True):
        assert scores == pytest.approx(reference, abs=1e-6)


def test_a_step_holding_the_marker_is_an_error(style_folder: Path) -> None:
    prm = load_prm(style_folder)
    marker = "<extra_0>" if style_folder.name.startswith("qwen") else f" {SHEPHERD_TAG}"
    with pytest.raises(ValueError, match="step-marker"):
        prm.score_steps(QUESTION, [f"a step{marker} with the marker inside"])


def test_unknown_style_lists_valid_names(qwen_folder: Path) -> None:
    with pytest.raises(ValueError, match="math-shepherd, qwen2.5-math-prm, token-classification"):
        load_prm(qwen_folder, style="no-such-style")


def test_folder_of_no_known_style_is_an_error(tmp_path: Path) -> None:
    char_tokenizer(["<s>"], bos_token="<s>").save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="cannot tell the PRM style"):
        load_prm(tmp_path)
