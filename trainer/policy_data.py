"""Policy training data: solver traces over varied winning routes, tokenized once and cached.

Up to `MAX_ROUTES_PER_PROBLEM` distinct random routes per problem teach the model that
several first steps can win, which is what makes sampling and search worth doing.
Problems come from `POLICY_DATA_SEED`, and any that collide with the dev set are dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from rewards.countdown.problems import Problem, dev_problems, format_prompt, sample_problem
from rewards.countdown.solver import solve_routes
from rewards.countdown.steps import format_reply
from trainer.tokenizer import REPLY_SEPARATOR

POLICY_DATA_SEED = 1
MAX_ROUTES_PER_PROBLEM = 4
NUM_DEV_EXCLUDED = 1000
"""Dev problems (from DEV_SEED) excluded from training even if a training seed draws them."""


@lru_cache(maxsize=1)
def excluded_problems() -> frozenset[Problem]:
    """The dev problems no training set may contain (computed once per process)."""
    return frozenset(dev_problems(NUM_DEV_EXCLUDED))


@dataclass(frozen=True)
class TokenizedExamples:
    """Variable-length examples packed flat: example i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (num_examples + 1,) int64
    prompt_lengths: np.ndarray  # (num_examples,) tokens before the reply, bos and separator included

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def example(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]


def training_problems(seed: int, num_problems: int) -> list[Problem]:
    """Seeded problems that never coincide with a dev problem."""
    rng = random.Random(seed)
    excluded = excluded_problems()
    problems: list[Problem] = []
    while len(problems) < num_problems:
        problem = sample_problem(rng)
        if problem not in excluded:
            problems.append(problem)
    return problems


def problem_traces(problem: Problem, rng: random.Random) -> list[str]:
    """Replies for up to MAX_ROUTES_PER_PROBLEM distinct random winning routes."""
    routes = solve_routes(problem.numbers, problem.target)
    chosen = rng.sample(routes, min(MAX_ROUTES_PER_PROBLEM, len(routes)))
    return [format_reply(route) for route in chosen]


def build_pairs(seed: int, num_problems: int) -> list[tuple[str, str]]:
    """(prompt, reply) pairs for `num_problems` training problems."""
    rng = random.Random(seed + 1)
    pairs: list[tuple[str, str]] = []
    for problem in tqdm(training_problems(seed, num_problems), desc="traces", mininterval=10):
        prompt = format_prompt(problem)
        pairs.extend((prompt, reply) for reply in problem_traces(problem, rng))
    return pairs


def encode_pairs(tokenizer: PreTrainedTokenizerBase, pairs: list[tuple[str, str]]) -> TokenizedExamples:
    """bos + prompt + separator + reply + eos, exactly what the chat template produces."""
    prompts = tokenizer([p + REPLY_SEPARATOR for p, _ in pairs], add_special_tokens=False)["input_ids"]
    replies = tokenizer([r for _, r in pairs], add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    sequences = [[bos, *p, *r, eos] for p, r in zip(prompts, replies, strict=True)]
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.fromiter((t for s in sequences for t in s), dtype=np.int32, count=int(offsets[-1]))
    prompt_lengths = np.array([1 + len(p) for p in prompts], dtype=np.int64)
    return TokenizedExamples(ids=ids, offsets=offsets, prompt_lengths=prompt_lengths)


def load_or_build(
    cache: Path, tokenizer: PreTrainedTokenizerBase, seed: int, num_problems: int
) -> TokenizedExamples:
    """Reuse the cached arrays when present; the cache name encodes seed and size."""
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            return TokenizedExamples(data["ids"], data["offsets"], data["prompt_lengths"])
    examples = encode_pairs(tokenizer, build_pairs(seed, num_problems))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, ids=examples.ids, offsets=examples.offsets, prompt_lengths=examples.prompt_lengths)
    tmp.replace(cache)
    return examples
