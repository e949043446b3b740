"""PRM data and training on a tiny random policy: shapes, label ranges, determinism, saving."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from rewards.countdown.problems import format_prompt, generate_problems
from rewards.countdown.verifier import grade_steps, label_steps
from rewards.prm import load_prm
from rewards.prm_encoding import PRM_METADATA_FILE
from trainer.checkpoint import weights_digest
from trainer.loop import OptimConfig
from trainer.policy import ModelShape, policy_config
from trainer.prm import (
    PrmRun,
    collate,
    encode_records,
    positive_rate,
    soft_label_loss,
    step_markers,
    train_prm,
)
from trainer.prm_data import LabelledReply, PrmDataConfig, label_chunk, load_or_label
from trainer.tokenizer import build_tokenizer

TINY = ModelShape(num_layers=1, hidden=32, num_heads=2, mlp=64, max_positions=256)
DATA = PrmDataConfig(
    labels="rollout", num_problems=6, replies_per_problem=1, rollouts=2, prefixes_per_call=4, chunk_problems=3
)


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("policy")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(policy_config(tokenizer, TINY))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_labels_are_rollout_fractions_and_deterministic(tiny_policy: Path) -> None:
    tokenizer = build_tokenizer()
    model = LlamaForCausalLM.from_pretrained(tiny_policy).eval()
    problems = generate_problems(9, 3)
    torch.manual_seed(1)
    first = label_chunk(model, tokenizer, problems, DATA)
    torch.manual_seed(1)
    second = label_chunk(model, tokenizer, problems, DATA)
    assert first == second
    for record in first:
        assert len(record.labels) == len(record.steps) <= 5
        assert all(label in (0.0, 0.5, 1.0) for label in record.labels)


@pytest.mark.parametrize("labels", ["exact", "ternary"])
def test_checker_labels_are_the_step_checker_on_distinct_replies_of_the_real_policy(labels: str) -> None:
    policy = Path(__file__).resolve().parents[2] / "models" / "countdown"
    model = LlamaForCausalLM.from_pretrained(policy, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(policy)
    problems = generate_problems(11, 4)
    config = PrmDataConfig(labels=labels, replies_per_problem=6, reply_temperature=1.0)  # type: ignore[arg-type]
    torch.manual_seed(0)
    records = label_chunk(model, tokenizer, problems, config)
    by_prompt = {format_prompt(p): p for p in problems}
    assert set(by_prompt) == {r.prompt for r in records}
    assert len(records) > len(problems)  # several distinct samples per problem at T=1
    assert len({(r.prompt, tuple(r.steps)) for r in records}) == len(records)
    for record in records:
        reply = "\n".join(record.steps)
        if labels == "ternary":
            expected = grade_steps(by_prompt[record.prompt], reply)
        else:
            expected = [float(ok) for ok in label_steps(by_prompt[record.prompt], reply)]
        assert record.labels == expected
    others = [source for source in ("rollout", "exact", "ternary") if source != labels]
    for other in others:
        assert config.folder_name("abc") != replace(config, labels=other).folder_name("abc")  # type: ignore[arg-type]


def test_soft_label_loss_only_reads_step_ends() -> None:
    tokenizer = build_tokenizer()
    markers = step_markers(tokenizer)
    records = [
        LabelledReply("countdown target=3 numbers=1,2,1,1", ["2+1=3 (1,1,3)", "answer: (2+1)"], [1.0, 0.0]),
        LabelledReply("countdown target=3 numbers=1,2,1,1", ["2*1=2 (1,1,2)"], [0.25]),
    ]
    batch = collate(encode_records(tokenizer, markers, records), pad_id=0)
    assert batch["is_step_end"].sum().item() == 3
    assert sorted(batch["targets"][batch["is_step_end"]].tolist()) == [0.0, 0.25, 1.0]

    class Constant(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            logits = torch.zeros((*input_ids.shape, 2))  # p = 0.5 everywhere
            return type("Out", (), {"logits": logits})()

    assert soft_label_loss(Constant(), batch).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_train_prm_end_to_end(tiny_policy: Path, tmp_path: Path) -> None:
    run = PrmRun(
        policy=tiny_policy,
        out=tmp_path / "prm",
        runs_dir=tmp_path / "runs",
        batch_size=2,
        data=DATA,
        optim=OptimConfig(steps=2, warmup=1, checkpoint_every=1),
    )
    losses = train_prm(run)
    assert len(losses) == 2
    folder = tmp_path / "runs" / DATA.folder_name(weights_digest(tiny_policy))
    assert len(list(folder.glob("chunk-*.json"))) == 2
    config = json.loads((tmp_path / "prm" / "config.json").read_text())
    assert config["id2label"] == {"0": "error", "1": "correct"}
    assert json.loads((tmp_path / "prm" / PRM_METADATA_FILE).read_text())["final_end_token_id"] == 2
    scores = load_prm(tmp_path / "prm").score_steps("countdown target=3 numbers=1,2,1,1", ["2+1=3 (1,1,3)"])
    assert len(scores) == 1
    policy = LlamaForCausalLM.from_pretrained(tiny_policy)
    cached = load_or_label(policy, build_tokenizer(), tmp_path / "runs", DATA, weights_digest(tiny_policy))
    assert len(cached) == DATA.num_problems


@pytest.mark.parametrize(
    ("rate", "label", "expected_weight"), [(0.5, 1.0, 1.0), (0.1, 1.0, 5.0), (0.1, 0.0, 0.5 / 0.9)]
)
def test_balanced_loss_weights_each_class_by_its_rarity(
    rate: float, label: float, expected_weight: float
) -> None:
    tokenizer = build_tokenizer()
    records = [LabelledReply("countdown target=3 numbers=1,2,1,1", ["2+1=3 (1,1,3)"], [label])]
    batch = collate(encode_records(tokenizer, step_markers(tokenizer), records), pad_id=0)

    class Constant(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> object:
            return type("Out", (), {"logits": torch.zeros((*input_ids.shape, 2))})()  # p = 0.5

    expected = expected_weight * torch.log(torch.tensor(2.0)).item()
    assert soft_label_loss(Constant(), batch, rate).item() == pytest.approx(expected)


@pytest.mark.parametrize(("labels", "expected"), [([[0.0, 1.0]], 0.5), ([[0.0]], 0.01), ([[1.0, 1.0]], 0.99)])
def test_positive_rate_is_clipped(labels: list[list[float]], expected: float) -> None:
    records = [LabelledReply("p", ["s"] * len(ls), ls) for ls in labels]
    assert positive_rate(records) == pytest.approx(expected)
