"""Preferred-route replay on the bundled policy: scores are the reply's log-likelihood, and the
route picked is the one the policy finds most likely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from engine.models import resolve_model_dir
from rewards.tasks import get_trainable_task
from trainer.policy import collate
from trainer.policy_data import encode_pairs
from trainer.preferred_routes import preferred_pairs, replay_pairs, reply_log_probs

MESSAGE = "countdown target=11 numbers=42,20,51,84"
ROUTE = "42-20=22 (51,84,22)\n84-51=33 (22,33)\n33-22=11 (11)\nanswer: ((84-51)-(42-20))"
NONSENSE = "9*9=1 (51,84,1)\n1+1=7 (84,7)\n7/7=11 (11)\nanswer: ((9*9)+1)"


@pytest.fixture(scope="module")
def policy() -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    folder = resolve_model_dir("countdown")
    model = LlamaForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def test_scores_are_the_reply_log_likelihood_the_training_loss_sees(policy: tuple) -> None:
    model, tokenizer = policy
    pairs = [(MESSAGE, ROUTE), (MESSAGE, NONSENSE), (MESSAGE, ROUTE + "\n")]
    examples = encode_pairs(tokenizer, pairs)
    scores = reply_log_probs(model, examples, int(tokenizer.pad_token_id))
    for index in range(len(pairs)):
        batch = collate(examples, np.array([index]), int(tokenizer.pad_token_id))
        with torch.inference_mode():
            mean_nll = float(model(**batch).loss)
        labelled = int((batch["labels"] != -100).sum())  # the reply and eos; position 0 is the bos
        assert scores[index] == pytest.approx(-mean_nll * labelled, rel=1e-4)
    assert scores[0] > scores[1] + 20  # a true route is far likelier than wrong arithmetic


def test_the_route_picked_is_the_policys_most_likely() -> None:
    folder = resolve_model_dir("countdown")
    picked = preferred_pairs(folder, [(MESSAGE, [NONSENSE, ROUTE]), (MESSAGE, [ROUTE, NONSENSE])])
    assert picked == [(MESSAGE, ROUTE), (MESSAGE, ROUTE)]


def test_preferred_replay_keeps_the_problems_and_picks_a_verified_route() -> None:
    task = get_trainable_task("countdown")
    random_pairs = replay_pairs(task, 7, 12, None, 8)
    preferred = replay_pairs(task, 7, 12, resolve_model_dir("countdown"), 8)
    assert [m for m, _ in preferred] == [m for m, _ in random_pairs]
    assert all(task.is_sound(m, r) for m, r in preferred)
