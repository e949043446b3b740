"""Where a Countdown policy fails: greedy accuracy, the step where failed replies go bad, and
how well it computes a step's result when the route is given.

    python -m bench.policy_failures FOLDER [FOLDER ...] [--problems 300] [--routes 400]

Per policy folder, on held-out dev problems:
- greedy accuracy (transformers `generate`, batched);
- failed replies by their first bad step (`rewards.countdown.verifier.label_steps`: a step that
  is wrong or leaves the target unreachable): 1st, 2nd, later;
- teacher-forced on one random solver route per problem: accuracy and mean NLL of the tokens
  of each step's result (the digits after `=`), i.e. the arithmetic, apart from the route.

A policy can get better at the last (the arithmetic of a given route) and worse at the first
(docs/learning.md: trained on replies that always reach the target, it bends its own steps'
arithmetic toward the target). Writes bench/results/policy_failures.json.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from bench.report import print_table, write_json
from rewards.countdown.problems import parse_prompt
from rewards.countdown.solver import solve_routes
from rewards.countdown.steps import format_reply
from rewards.countdown.verifier import first_error_index, label_steps
from rewards.tasks import get_trainable_task
from trainer.generation import Sampling, continue_texts, reply_prefix
from trainer.policy import IGNORE_INDEX, collate, next_token_log_probs
from trainer.policy_data import encode_pairs

RESULTS = Path(__file__).resolve().parent / "results" / "policy_failures.json"
BATCH = 64


def greedy_replies(model: LlamaForCausalLM, tokenizer: Any, messages: list[str]) -> list[str]:
    replies: list[str] = []
    for start in range(0, len(messages), BATCH):
        prefixes = [reply_prefix(m) for m in messages[start : start + BATCH]]
        outputs = continue_texts(model, tokenizer, prefixes, Sampling(temperature=0.0))
        replies += [texts[0] for texts in outputs]
    return replies


def first_bad_steps(messages: list[str], replies: list[str]) -> Counter[str]:
    """Failed replies counted by their first bad step: '1st', '2nd' or 'later'."""
    task, counts = get_trainable_task("countdown"), Counter[str]()
    for message, reply in zip(messages, replies, strict=True):
        if not task.verify(message, reply):
            index = first_error_index(label_steps(parse_prompt(message), reply))
            counts[{0: "1st", 1: "2nd"}.get(index if index is not None else -1, "later")] += 1
    return counts


@torch.inference_mode()
def result_digits(
    model: LlamaForCausalLM, tokenizer: Any, pairs: list[tuple[str, str]]
) -> tuple[float, float]:
    """(accuracy, mean NLL) of the next-token prediction on every step result's digits."""
    examples = encode_pairs(tokenizer, pairs)
    batch = collate(examples, np.arange(len(pairs)), int(tokenizer.pad_token_id))
    log_probs, labels = next_token_log_probs(model, batch)
    inputs = batch["input_ids"][:, :-1]
    nll = -log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    right = log_probs.argmax(-1) == labels
    equals, space = tokenizer.convert_tokens_to_ids("="), tokenizer.convert_tokens_to_ids(" ")
    in_result = torch.zeros_like(labels, dtype=torch.bool)
    for row in range(labels.shape[0]):
        inside = False
        for col in range(labels.shape[1]):
            inside = (inside or int(inputs[row, col]) == equals) and int(labels[row, col]) != space
            in_result[row, col] = inside and int(labels[row, col]) != IGNORE_INDEX
    return float(right[in_result].float().mean()), float(nll[in_result].mean())


def measure(folder: Path, messages: list[str], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    replies = greedy_replies(model, tokenizer, messages)
    task = get_trainable_task("countdown")
    accuracy = sum(bool(task.verify(m, r)) for m, r in zip(messages, replies, strict=True)) / len(messages)
    digit_accuracy, digit_nll = result_digits(model, tokenizer, pairs)
    return {
        "policy": str(folder),
        "greedy": accuracy,
        "first_bad_step": dict(first_bad_steps(messages, replies)),
        "result_digit_accuracy": digit_accuracy,
        "result_digit_nll": digit_nll,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--problems", type=int, default=300, help="dev problems solved greedily")
    parser.add_argument(
        "--routes", type=int, default=400, help="dev problems teacher-forced on a solver route"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    task, rng = get_trainable_task("countdown"), random.Random(0)
    messages = task.dev_messages(max(args.problems, args.routes))
    pairs = []
    for message in messages[: args.routes]:
        problem = parse_prompt(message)
        pairs.append((message, format_reply(rng.choice(solve_routes(problem.numbers, problem.target)))))
    rows = [measure(folder, messages[: args.problems], pairs) for folder in args.folders]
    print_table(
        ["policy", "greedy", "first bad step 1st/2nd/later", "result-digit acc", "result-digit NLL"],
        [
            [
                r["policy"],
                f"{r['greedy']:.3f}",
                "/".join(str(r["first_bad_step"].get(k, 0)) for k in ("1st", "2nd", "later")),
                f"{r['result_digit_accuracy']:.3f}",
                f"{r['result_digit_nll']:.3f}",
            ]
            for r in rows
        ],
    )
    write_json(args.out, {"problems": args.problems, "routes": args.routes, "rows": rows})


if __name__ == "__main__":
    main()
