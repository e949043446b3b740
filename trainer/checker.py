"""Train the bundled claim checker (`rewards.prm_checker`) from the policy's own replies.

    python -m trainer.checker --policy models/countdown --out models/countdown-checker

The policy's sampled replies (the exact-label set of `trainer.prm_data`, cached under
`runs/prm/`) are rewritten with every step's result and numbers-left list made true, up to
the first step whose operands are not there to use; the policy is then fine-tuned on them as a
causal LM. It keeps the policy's way of doing arithmetic but loses its habit of writing the
target in a last step the numbers cannot reach: on a dead end the rewritten step carries what
the operands really give. Measured (2026-12-01, 49k rewritten replies, 800 steps, 5 min): as a
PRM it tells a right step from a wrong one with AUROC 0.98 / 0.99 / 0.99 on the first three
steps, where the token-classifier PRMs reach 0.75 / 0.76 / 0.53.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from rewards.countdown.problems import parse_prompt
from rewards.countdown.solver import Step, apply_operator
from rewards.countdown.steps import ANSWER_PREFIX, format_step, parse_step
from rewards.prm_checker import CheckerConfig
from trainer.checkpoint import save_model_folder, weights_digest
from trainer.loop import OptimConfig, train
from trainer.policy import causal_lm_loss, collate
from trainer.policy_data import encode_pairs
from trainer.prm import add_fine_tune_arguments, step_markers
from trainer.prm_data import LabelledReply, PrmDataConfig, load_or_label
from trainer.schedule import length_grouped_batches

CHECKER_DATA = PrmDataConfig(labels="exact", num_problems=16384, replies_per_problem=4, reply_temperature=0.3)
"""The replies `--labels exact` trains a PRM on: one cache serves both."""
CHECKER_OPTIM = OptimConfig(steps=800, lr=5e-4, warmup=50, checkpoint_every=200)
"""Fine-tuning from the policy: about half an epoch of the rewritten replies."""


@dataclass(frozen=True)
class CheckerRun:
    """Everything that determines the checker's weights."""

    policy: Path
    out: Path
    runs_dir: Path = Path("runs/prm")
    batch_size: int = 32
    seed: int = 0
    resume: bool = False
    data: PrmDataConfig = CHECKER_DATA
    optim: OptimConfig = CHECKER_OPTIM


def true_steps(prompt: str, steps: list[str]) -> list[str]:
    """`steps` with each result and numbers-left list made what the operands give, stopping
    before the first step that cannot be read that way (a missing operand, an inexact division,
    a malformed line) and before the answer line."""
    numbers = list(parse_prompt(prompt).numbers)
    rewritten: list[str] = []
    for line in steps:
        if line.startswith(ANSWER_PREFIX):
            break
        try:
            step = parse_step(line)
        except ValueError:
            break
        result = apply_operator(step.left, step.op, step.right)
        if result is None or any(
            numbers.count(n) < [step.left, step.right].count(n) for n in (step.left, step.right)
        ):
            break
        numbers.remove(step.left)
        numbers.remove(step.right)
        numbers.append(result)
        rewritten.append(format_step(Step(step.left, step.op, step.right, result, tuple(numbers))))
    return rewritten


def checker_pairs(records: list[LabelledReply]) -> list[tuple[str, str]]:
    """Distinct (prompt, rewritten reply) pairs with at least one step."""
    pairs = {(r.prompt, "\n".join(steps)): None for r in records if (steps := true_steps(r.prompt, r.steps))}
    return list(pairs)


def train_checker(run: CheckerRun) -> list[float]:
    """Sample (or reuse cached) replies, rewrite them true, fine-tune, save the folder."""
    tokenizer = AutoTokenizer.from_pretrained(run.policy)
    policy = LlamaForCausalLM.from_pretrained(run.policy, use_safetensors=True).eval()
    records = load_or_label(policy, tokenizer, run.runs_dir, run.data, weights_digest(run.policy))
    examples = encode_pairs(tokenizer, checker_pairs(records))
    schedule = length_grouped_batches(examples.lengths(), run.batch_size, run.optim.steps, run.seed)
    torch.manual_seed(run.seed)
    pad_id = int(tokenizer.pad_token_id)
    losses = train(
        policy.train(),
        run.optim,
        batch_at=lambda step: collate(examples, schedule[step], pad_id),
        loss_of=causal_lm_loss,
        checkpoint=run.runs_dir / "checker-checkpoint.pt",
        resume=run.resume,
    )
    summary = {
        "steps": run.optim.steps,
        "num_examples": len(examples),
        "num_replies": len(records),
        "final_loss_last50": sum(losses[-50:]) / max(1, len(losses[-50:])),
    }
    save_model_folder(policy.eval(), tokenizer, run.out, extra_json={"training.json": summary})
    step_markers(tokenizer).save(run.out)
    CheckerConfig().save(run.out)
    return losses


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fine_tune_arguments(parser, Path("models/countdown-checker"), CHECKER_OPTIM.steps)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.monotonic()
    run = CheckerRun(
        policy=args.policy,
        out=args.out,
        runs_dir=args.runs_dir,
        resume=args.resume,
        optim=replace(CHECKER_OPTIM, steps=args.steps),
    )
    losses = train_checker(run)
    print(f"saved {args.out} final loss {losses[-1]:.4f} in {time.monotonic() - began:.0f}s", flush=True)


if __name__ == "__main__":
    main()
