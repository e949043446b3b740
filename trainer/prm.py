"""Train the bundled Countdown PRM from step labels, starting from the policy's weights.

    python -m trainer.prm --policy models/countdown --out models/countdown-prm [--resume]

A `LlamaForTokenClassification` with 2 labels (Qwen2.5-Math-PRM style) is fitted with
soft-label cross-entropy at the step-end tokens only; p(label 1) is the step score. The labels
come from Monte-Carlo rollouts by default, or from the exact step checker with `--labels exact`
or `--labels ternary` (see `trainer.prm_data`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    PreTrainedTokenizerBase,
)

from rewards.prm_encoding import StepMarkers, encode_steps
from trainer.checkpoint import save_model_folder, weights_digest
from trainer.loop import Batch, OptimConfig, train
from trainer.prm_data import LabelledReply, PrmDataConfig, add_data_arguments, data_config, load_or_label
from trainer.schedule import length_grouped_batches
from trainer.tokenizer import REPLY_SEPARATOR, STEP_END

NUM_THREADS = 2
ID2LABEL = {0: "error", 1: "correct"}
FINAL_STEP_PREFIX = "answer:"
PRM_OPTIM = OptimConfig(steps=160, lr=5e-4, warmup=16, checkpoint_every=40)
"""Fine-tuning from the policy: lower peak lr, about 7 epochs of the default labelled set.
(For `--labels exact` with 16k problems x 4 replies: `--steps 2000`, one epoch.)"""


@dataclass(frozen=True)
class PrmRun:
    """Everything that determines the PRM weights."""

    policy: Path
    out: Path
    runs_dir: Path = Path("runs/prm")
    batch_size: int = 32
    seed: int = 0
    resume: bool = False
    data: PrmDataConfig = field(default_factory=PrmDataConfig)
    optim: OptimConfig = PRM_OPTIM


def step_markers(tokenizer: PreTrainedTokenizerBase) -> StepMarkers:
    """Newline ends a step line, EOS ends the answer line (as in the policy's replies)."""
    return StepMarkers(
        prompt_separator=REPLY_SEPARATOR,
        step_end_token_id=tokenizer.get_vocab()[STEP_END],
        final_end_token_id=int(tokenizer.eos_token_id),
        final_step_prefix=FINAL_STEP_PREFIX,
    )


@dataclass(frozen=True)
class EncodedRecord:
    """A labelled reply as ids with soft labels at its step-end positions."""

    ids: list[int]
    step_ends: list[int]
    labels: list[float]


def encode_records(
    tokenizer: PreTrainedTokenizerBase, markers: StepMarkers, records: list[LabelledReply]
) -> list[EncodedRecord]:
    """Encode every record that has at least one labelled step."""
    encoded = []
    for record in records:
        if record.steps:
            e = encode_steps(tokenizer, markers, record.prompt, record.steps)
            encoded.append(EncodedRecord(e.ids, e.step_ends, record.labels))
    return encoded


def collate(records: list[EncodedRecord], pad_id: int) -> Batch:
    """Right-padded ids with a (B, T) soft-label target and a mask of step-end positions."""
    width = max(len(r.ids) for r in records)
    input_ids = torch.full((len(records), width), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(records), width), dtype=torch.long)  # (B, T)
    targets = torch.zeros((len(records), width))  # (B, T) p(correct)
    is_step_end = torch.zeros((len(records), width), dtype=torch.bool)  # (B, T)
    for row, r in enumerate(records):
        input_ids[row, : len(r.ids)] = torch.tensor(r.ids)
        attention_mask[row, : len(r.ids)] = 1
        targets[row, r.step_ends] = torch.tensor(r.labels)
        is_step_end[row, r.step_ends] = True
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "targets": targets,
        "is_step_end": is_step_end,
    }


def soft_label_loss(model: torch.nn.Module, batch: Batch, positive_rate: float = 0.5) -> torch.Tensor:
    """Cross-entropy against (1 - p, p) at step ends only, each class weighted inversely to its
    share of the label mass (`positive_rate`), so a rare class is not drowned out. With
    0.5 both weights are 1: the plain soft cross-entropy."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, 2)
    log_probs = logits.log_softmax(-1)[batch["is_step_end"]]  # (S, 2)
    p = batch["targets"][batch["is_step_end"]]  # (S,)
    w_pos, w_neg = 0.5 / positive_rate, 0.5 / (1 - positive_rate)
    return -(w_pos * p * log_probs[:, 1] + w_neg * (1 - p) * log_probs[:, 0]).mean()


def positive_rate(records: list[LabelledReply]) -> float:
    """Mean label over all steps, clipped away from 0 and 1 so the class weights stay finite."""
    labels = [label for r in records for label in r.labels]
    return min(max(sum(labels) / max(1, len(labels)), 0.01), 0.99)


def init_from_policy(policy: Path, seed: int) -> LlamaForTokenClassification:
    """Token classifier whose body is the policy's transformer; only the 2-way head is new."""
    config = LlamaConfig.from_pretrained(policy)
    config.num_labels = len(ID2LABEL)
    config.id2label = ID2LABEL
    config.label2id = {v: k for k, v in ID2LABEL.items()}
    config.classifier_dropout = 0.0  # no dropout RNG, so resumed runs match uninterrupted ones
    torch.manual_seed(seed)
    model = LlamaForTokenClassification.from_pretrained(policy, config=config, use_safetensors=True)
    return model


def train_prm(run: PrmRun) -> list[float]:
    """Label (or reuse cached labels), train, and save the PRM folder; returns per-step losses."""
    tokenizer = AutoTokenizer.from_pretrained(run.policy)
    policy = LlamaForCausalLM.from_pretrained(run.policy, use_safetensors=True).eval()
    records = load_or_label(policy, tokenizer, run.runs_dir, run.data, weights_digest(run.policy))
    del policy
    markers = step_markers(tokenizer)
    encoded = encode_records(tokenizer, markers, records)
    rate = positive_rate(records)
    lengths = np.array([len(r.ids) for r in encoded])
    schedule = length_grouped_batches(lengths, run.batch_size, run.optim.steps, run.seed)
    model = init_from_policy(run.policy, run.seed)
    pad_id = int(tokenizer.pad_token_id)
    losses = train(
        model,
        run.optim,
        batch_at=lambda step: collate([encoded[int(i)] for i in schedule[step]], pad_id),
        loss_of=lambda model, batch: soft_label_loss(model, batch, rate),
        checkpoint=run.runs_dir / "checkpoint.pt",
        resume=run.resume,
    )
    summary = {
        "steps": run.optim.steps,
        "num_records": len(encoded),
        **asdict(run.data),
        "positive_rate": rate,
        "final_loss_last50": sum(losses[-50:]) / max(1, len(losses[-50:])),
    }
    save_model_folder(model, tokenizer, run.out, extra_json={"training.json": summary})
    markers.save(run.out)
    return losses


def add_fine_tune_arguments(parser: argparse.ArgumentParser, out: Path, steps: int) -> None:
    """The flags of a model fine-tuned from the policy on its replies (the PRM, the checker)."""
    parser.add_argument("--policy", type=Path, default=Path("models/countdown"))
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/prm"))
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="1 is faster on a busy machine")


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fine_tune_arguments(parser, Path("models/countdown-prm"), PRM_OPTIM.steps)
    parser.add_argument("--lr", type=float, default=PRM_OPTIM.lr)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.monotonic()
    run = PrmRun(
        policy=args.policy,
        out=args.out,
        runs_dir=args.runs_dir,
        resume=args.resume,
        data=data_config(args),
        optim=replace(PRM_OPTIM, steps=args.steps, lr=args.lr),
    )
    losses = train_prm(run)
    print(f"saved {args.out} final loss {losses[-1]:.4f} in {time.monotonic() - began:.0f}s", flush=True)


if __name__ == "__main__":
    main()
