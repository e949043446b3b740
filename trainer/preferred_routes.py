"""Replay the reference solution the policy already prefers, not a random one.

A Countdown problem has about five winning routes. The bundled policy was trained on random
ones, so at each choice its probability is spread over routes and the greedy reply can stitch
the first steps of one route to the last of another, which is the dead end the calibration
note names as its main failure. Among the verified routes of a replayed problem, this picks
the one the policy being trained gives the highest likelihood: the route a perfect search
over the policy's own replies would have kept, i.e. expert iteration with the task's solver as
the search. Training on it sharpens the policy toward routes it can already follow instead of
re-spreading it; a random route is still what `replay_route="random"` replays.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoTokenizer, LlamaForCausalLM

from rewards.tasks import TrainableTask
from trainer.policy import IGNORE_INDEX, collate, next_token_log_probs
from trainer.policy_data import TokenizedExamples, encode_pairs

SCORE_BATCH = 256


@torch.inference_mode()
def reply_log_probs(model: torch.nn.Module, examples: TokenizedExamples, pad_id: int) -> np.ndarray:
    """Summed log-probability of each example's reply and eos under `model`."""
    order = np.argsort(examples.lengths(), kind="stable")
    scores = np.zeros(len(examples), dtype=np.float64)
    for start in tqdm(range(0, len(order), SCORE_BATCH), desc="score routes", mininterval=15):
        indices = order[start : start + SCORE_BATCH]
        log_probs, labels = next_token_log_probs(model, collate(examples, indices, pad_id))
        mask = labels != IGNORE_INDEX
        picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
        scores[indices] = (picked * mask).sum(dim=1).numpy()
    return scores


def preferred_pairs(model_dir: Path, candidates: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    """Per (message, replies): the reply `model_dir`'s policy finds most likely."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, use_safetensors=True).eval()
    flat = [(message, reply) for message, replies in candidates for reply in replies]
    scores = reply_log_probs(model, encode_pairs(tokenizer, flat), int(tokenizer.pad_token_id))
    pairs: list[tuple[str, str]] = []
    start = 0
    for message, replies in candidates:
        best = int(np.argmax(scores[start : start + len(replies)]))
        pairs.append((message, replies[best]))
        start += len(replies)
    return pairs


def replay_pairs(
    task: TrainableTask, seed: int, num_problems: int, policy: Path | None, max_candidates: int
) -> list[tuple[str, str]]:
    """The task's reference pairs: a random reply each (`policy` None), or the one `policy`
    prefers among up to `max_candidates` of them (a sample bounds the scoring: problems have
    about ten routes on average and up to forty)."""
    if policy is None:
        return task.reference_pairs(seed, num_problems)
    rng = random.Random(seed)
    candidates = [
        (message, rng.sample(replies, min(len(replies), max_candidates)))
        for message, replies in task.reference_replies(seed, num_problems)
    ]
    return preferred_pairs(policy, candidates)
