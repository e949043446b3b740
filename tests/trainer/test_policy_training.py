"""A tiny policy run end to end: data, checkpoints, exact resume, loadable model folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from rewards.countdown.problems import dev_problems, format_prompt
from rewards.countdown.steps import split_reply
from trainer.loop import OptimConfig, train
from trainer.policy import ModelShape, PolicyRun, causal_lm_loss, collate, policy_config, train_policy
from trainer.policy_data import encode_pairs, load_or_build, training_problems
from trainer.tokenizer import build_tokenizer

TINY = ModelShape(num_layers=1, hidden=32, num_heads=2, mlp=64, max_positions=128)


def test_training_problems_avoid_the_dev_set() -> None:
    assert not set(training_problems(1234, 50)) & set(dev_problems(50))


def test_examples_mask_everything_but_reply_and_eos() -> None:
    tokenizer = build_tokenizer()
    examples = encode_pairs(tokenizer, [("countdown target=3 numbers=1,2", "2+1=3 (3)\nanswer: (2+1)")])
    batch = collate(examples, np.array([0]), pad_id=0)
    labels = batch["labels"][0]
    assert tokenizer.decode(labels[labels >= 0]) == "2+1=3 (3)\nanswer: (2+1)<eos>"
    ids = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "countdown target=3 numbers=1,2"},
            {"role": "assistant", "content": "2+1=3 (3)\nanswer: (2+1)"},
        ],
        tokenize=True,
    )["input_ids"]
    assert batch["input_ids"][0].tolist() == ids


class Crash(RuntimeError):
    pass


def _tiny_loop(tmp_path: Path, crash_at: int | None, resume: bool) -> list[float]:
    tokenizer = build_tokenizer()
    examples = load_or_build(tmp_path / "data.npz", tokenizer, seed=5, num_problems=40)
    torch.manual_seed(0)
    model = LlamaForCausalLM(policy_config(tokenizer, TINY))
    config = OptimConfig(steps=5, warmup=2, checkpoint_every=2)

    def batch_at(step: int) -> dict[str, torch.Tensor]:
        if step == crash_at:
            raise Crash
        return collate(examples, np.arange(step * 8, step * 8 + 8), pad_id=0)

    return train(model, config, batch_at, causal_lm_loss, tmp_path / "ckpt.pt", resume=resume)


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = _tiny_loop(tmp_path / "a", crash_at=None, resume=False)
    with pytest.raises(Crash):
        _tiny_loop(tmp_path / "b", crash_at=3, resume=False)
    assert (tmp_path / "b" / "ckpt.pt").exists()
    resumed = _tiny_loop(tmp_path / "b", crash_at=None, resume=True)
    assert resumed == pytest.approx(straight, abs=1e-6)


def test_train_policy_writes_a_loadable_model(tmp_path: Path) -> None:
    run = PolicyRun(
        out=tmp_path / "model",
        runs_dir=tmp_path / "runs",
        num_problems=30,
        batch_size=8,
        shape=TINY,
        optim=OptimConfig(steps=3, warmup=1, checkpoint_every=2),
    )
    losses = train_policy(run)
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert (tmp_path / "runs" / "checkpoint.pt").exists()
    assert (tmp_path / "model" / "model.safetensors").exists()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": format_prompt(dev_problems(1)[0])}],
        add_generation_prompt=True,
        return_tensors="pt",
    )["input_ids"]
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 5) or tokenizer.eos_token_id in out[0].tolist()
    split_reply(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
