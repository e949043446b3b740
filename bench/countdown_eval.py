"""Countdown-4 dev-set evaluation of the bundled policy and PRM.

    python -m bench.countdown_eval [--n 500] [--out bench/results/countdown_eval.json]

Policy: greedy accuracy and pass@8 / pass@32 of temperature-1 sampling (unbiased estimator
from `--samples` draws). PRM: agreement with the exact step labeller over the sampled
replies: step-level F1 at threshold 0.5 (for both the "erroneous step" and the "correct
step" class) and ProcessBench first-error accuracy (predicted first error = first step
scored below 0.5, or none); and, as search uses the scores, step AUROC and best-of-8 accuracy
when the PRM picks one of the first 8 samples (to set against pass@1 and pass@8).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from rewards.countdown.problems import DEV_SEED, Problem, dev_problems, format_prompt
from rewards.countdown.steps import split_reply
from rewards.countdown.verifier import label_steps, verify_reply
from rewards.metrics import PrmQuality, auroc, best_of_k_accuracy, pass_at_k, prm_quality
from rewards.prm import TokenClassificationPRM
from trainer.generation import Sampling, continue_texts, reply_prefix

NUM_THREADS = 2
SAMPLING_SEED = 0
RERANK_K = 8
ROWS_PER_CALL = 128
"""Sequences per `generate` call: large batches amortise per-token Python overhead on CPU."""


@dataclass(frozen=True)
class PolicyResults:
    """Replies and the metrics computed from them."""

    greedy_accuracy: float
    pass_at: dict[int, float]
    samples: list[list[str]]


def generate_all(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    sampling: Sampling,
    desc: str,
) -> list[list[str]]:
    """Continue every prompt, `ROWS_PER_CALL` sequences per generate call."""
    per_call = max(1, ROWS_PER_CALL // sampling.num_return_sequences)
    replies: list[list[str]] = []
    for start in tqdm(range(0, len(prompts), per_call), desc=desc, mininterval=30):
        chunk = [reply_prefix(p) for p in prompts[start : start + per_call]]
        replies.extend(continue_texts(model, tokenizer, chunk, sampling))
    return replies


def _fingerprint(folder: Path) -> str:
    """Identifies the weights a cache was made with (size and mtime of the safetensors)."""
    stat = (folder / "model.safetensors").stat()
    return f"{folder.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def generate_replies(folder: Path, problems: list[Problem], num_samples: int) -> dict[str, list[list[str]]]:
    """Greedy replies and `num_samples` temperature-1 samples per problem."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    prompts = [format_prompt(p) for p in problems]
    greedy = generate_all(model, tokenizer, prompts, Sampling(temperature=0.0), "greedy")
    torch.manual_seed(SAMPLING_SEED)
    samples = generate_all(model, tokenizer, prompts, Sampling(num_return_sequences=num_samples), "sample")
    return {"greedy": greedy, "samples": samples}


def cached_replies(
    folder: Path, problems: list[Problem], num_samples: int, cache: Path
) -> dict[str, list[list[str]]]:
    """Generation is the slow part: reuse it when the same weights and sizes were run before."""
    key = {"policy": _fingerprint(folder), "n": len(problems), "samples": num_samples, "seed": SAMPLING_SEED}
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored["key"] == key:
            replies: dict[str, list[list[str]]] = stored["replies"]
            return replies
    replies = generate_replies(folder, problems, num_samples)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "replies": replies}))
    return replies


def evaluate_policy(folder: Path, problems: list[Problem], num_samples: int, cache: Path) -> PolicyResults:
    """Greedy accuracy and pass@k on `problems`."""
    replies = cached_replies(folder, problems, num_samples, cache)
    greedy, samples = replies["greedy"], replies["samples"]
    num_solved = sum(verify_reply(p, r[0]) for p, r in zip(problems, greedy, strict=True))
    num_correct = [sum(verify_reply(p, r) for r in rs) for p, rs in zip(problems, samples, strict=True)]
    pass_at = {
        k: sum(pass_at_k(num_samples, c, k) for c in num_correct) / len(problems)
        for k in (1, 8, 32)
        if k <= num_samples
    }
    return PolicyResults(greedy_accuracy=num_solved / len(problems), pass_at=pass_at, samples=samples)


def evaluate_prm(
    folder: Path, problems: list[Problem], samples: list[list[str]]
) -> tuple[PrmQuality, dict[str, float]]:
    """Score every sampled reply's steps; compare with the exact labeller (thresholded at 0.5)
    and, threshold-free, as search uses the scores: step AUROC and best-of-8 reranking."""
    prm = TokenClassificationPRM(folder)
    items: list[tuple[str, list[str]]] = []
    exact: list[list[bool]] = []
    owners: list[tuple[int, int]] = []  # (problem, sample) of each scored reply
    for i, (problem, replies) in enumerate(zip(problems, samples, strict=True)):
        for j, reply in enumerate(replies):
            parts = split_reply(reply)
            steps = parts.step_lines + ([parts.answer_line] if parts.answer_line is not None else [])
            if steps:
                items.append((format_prompt(problem), steps))
                exact.append(label_steps(problem, reply))
                owners.append((i, j))
    scores: list[list[float]] = []
    for start in tqdm(range(0, len(items), 1024), desc="prm", mininterval=30):
        scores.extend(prm.score_batch(items[start : start + 1024]))
    per_reply: list[list[list[float]]] = [[[] for _ in replies] for replies in samples]
    for (i, j), reply_scores in zip(owners, scores, strict=True):
        per_reply[i][j] = reply_scores
    correct = [[verify_reply(p, r) for r in rs] for p, rs in zip(problems, samples, strict=True)]
    pairs = [(s, ok) for ss, ls in zip(scores, exact, strict=True) for s, ok in zip(ss, ls, strict=True)]
    ranking = {
        "step_auroc": auroc([s for s, ok in pairs if ok], [s for s, ok in pairs if not ok]),
        **{
            f"best_of_{RERANK_K}_{how}": best_of_k_accuracy(per_reply, correct, RERANK_K, how)
            for how in ("min", "last", "product")
        },
    }
    return prm_quality(scores, exact), ranking


def print_table(rows: list[tuple[str, str]]) -> None:
    """A two-column plain-text table."""
    width = max(len(name) for name, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--policy", type=Path, default=Path("models/countdown"))
    parser.add_argument("--prm", type=Path, default=Path("models/countdown-prm"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/countdown_eval.json"))
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/countdown_eval_replies.json"))
    parser.add_argument(
        "--policy-only", action="store_true", help="generate (and cache) replies, skip the PRM"
    )
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="1 is faster on a busy machine")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.monotonic()
    problems = dev_problems(args.n)
    policy = evaluate_policy(args.policy, problems, args.samples, args.cache)
    policy_seconds = time.monotonic() - began
    quality, ranking = (None, {}) if args.policy_only else evaluate_prm(args.prm, problems, policy.samples)
    results = {
        "dev_seed": DEV_SEED,
        "num_problems": args.n,
        "num_samples": args.samples,
        "temperature": 1.0,
        "greedy_accuracy": policy.greedy_accuracy,
        "pass_at": {str(k): v for k, v in policy.pass_at.items()},
        "prm": None if quality is None else {**quality.as_dict(), **ranking},
        "seconds": {"policy": policy_seconds, "total": time.monotonic() - began},
    }
    rows = [("greedy accuracy", f"{policy.greedy_accuracy:.3f}")]
    rows += [(f"pass@{k} (T=1.0)", f"{v:.3f}") for k, v in policy.pass_at.items()]
    rows += [
        (f"prm {name}", f"{value:.3f}" if isinstance(value, float) else str(value))
        for name, value in ({} if quality is None else {**quality.as_dict(), **ranking}).items()
    ]
    rows.append(("seconds", f"{time.monotonic() - began:.0f}"))
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
