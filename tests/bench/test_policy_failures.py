"""bench.policy_failures on the bundled policy: its counts add up and its digit mask reads the
results of the steps only."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer, LlamaForCausalLM

from bench.policy_failures import main, result_digits
from engine.models import resolve_model_dir

MESSAGE = "countdown target=11 numbers=42,20,51,84"
ROUTE = "42-20=22 (51,84,22)\n84-51=33 (22,33)\n33-22=11 (11)\nanswer: ((84-51)-(42-20))"
WRONG_RESULTS = ROUTE.replace("=22 ", "=29 ").replace("=33 ", "=38 ")


def test_the_table_accounts_for_every_failed_reply(tmp_path: Path) -> None:
    out = tmp_path / "failures.json"
    main([str(resolve_model_dir("countdown")), "--problems", "40", "--routes", "20", "--out", str(out)])
    [row] = json.loads(out.read_text())["rows"]
    assert 0 < row["greedy"] < 1
    assert sum(row["first_bad_step"].values()) == round(40 * (1 - row["greedy"]))
    assert 0.5 < row["result_digit_accuracy"] <= 1.0


def test_result_digits_score_only_what_follows_an_equals_sign() -> None:
    folder = resolve_model_dir("countdown")
    model = LlamaForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    right_accuracy, right_nll = result_digits(model, tokenizer, [(MESSAGE, ROUTE)])
    wrong_accuracy, wrong_nll = result_digits(model, tokenizer, [(MESSAGE, WRONG_RESULTS)])
    assert right_accuracy > wrong_accuracy and wrong_nll > right_nll + 1.0
