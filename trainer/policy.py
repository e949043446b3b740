"""Train the bundled Countdown policy: a 3.4M-parameter Llama from scratch on solver traces.

    python -m trainer.policy --out models/countdown [--steps N] [--resume]

The step count is fixed by default so the shipped weights are reproducible.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from trainer.checkpoint import save_model_folder
from trainer.loop import Batch, OptimConfig, train
from trainer.policy_data import POLICY_DATA_SEED, TokenizedExamples, load_or_build
from trainer.schedule import length_grouped_batches
from trainer.tokenizer import build_tokenizer

IGNORE_INDEX = -100
"""Label value the HF loss skips: prompt and padding positions."""
NUM_THREADS = 2


@dataclass(frozen=True)
class ModelShape:
    """Llama dimensions; the default is the calibrated 3.4M-parameter model."""

    num_layers: int = 4
    hidden: int = 256
    num_heads: int = 4
    mlp: int = 768
    max_positions: int = 256


@dataclass(frozen=True)
class PolicyRun:
    """Everything that determines the trained weights."""

    out: Path
    runs_dir: Path = Path("runs/policy")
    batch_size: int = 64
    num_problems: int = 36_000
    data_seed: int = POLICY_DATA_SEED
    seed: int = 0
    resume: bool = False
    init_from: Path | None = None
    shape: ModelShape = field(default_factory=ModelShape)
    optim: OptimConfig = field(default_factory=OptimConfig)


def policy_config(tokenizer: PreTrainedTokenizerBase, shape: ModelShape) -> LlamaConfig:
    """A from-scratch Llama config sized to the tokenizer, untied embeddings, fp32."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=shape.max_positions,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def collate(examples: TokenizedExamples, indices: np.ndarray, pad_id: int) -> Batch:
    """Right-padded batch; labels only on the reply and eos."""
    width = int(examples.lengths()[indices].max())
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(indices), width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)  # (B, T)
    for row, index in enumerate(indices):
        ids = torch.from_numpy(examples.example(int(index)).astype(np.int64))
        prompt_length = int(examples.prompt_lengths[index])
        input_ids[row, : len(ids)] = ids
        labels[row, prompt_length : len(ids)] = ids[prompt_length:]
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def next_token_log_probs(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probabilities (B, T-1, V) of every next token, the labels (B, T-1) they predict,
    IGNORE_INDEX off the reply): what `causal_lm_loss` averages, per position."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return torch.log_softmax(logits[:, :-1].float(), dim=-1), batch["labels"][:, 1:]


def causal_lm_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled (reply) positions."""
    loss: torch.Tensor = model(**batch).loss
    return loss


def train_policy(run: PolicyRun) -> list[float]:
    """Build data, train (resuming if asked), save the model folder; returns per-step losses."""
    tokenizer = build_tokenizer()
    cache = run.runs_dir / f"data-seed{run.data_seed}-n{run.num_problems}.npz"
    examples = load_or_build(cache, tokenizer, run.data_seed, run.num_problems)
    schedule = length_grouped_batches(examples.lengths(), run.batch_size, run.optim.steps, run.seed)
    torch.manual_seed(run.seed)
    if run.init_from is None:
        model = LlamaForCausalLM(policy_config(tokenizer, run.shape))
    else:
        model = LlamaForCausalLM.from_pretrained(run.init_from, use_safetensors=True)
    pad_id = int(tokenizer.pad_token_id)
    losses = train(
        model,
        run.optim,
        batch_at=lambda step: collate(examples, schedule[step], pad_id),
        loss_of=causal_lm_loss,
        checkpoint=run.runs_dir / "checkpoint.pt",
        resume=run.resume,
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    summary = {
        "steps": run.optim.steps,
        "batch_size": run.batch_size,
        "num_problems": run.num_problems,
        "num_examples": len(examples),
        "data_seed": run.data_seed,
        "seed": run.seed,
        "lr": run.optim.lr,
        "init_from": None if run.init_from is None else str(run.init_from),
        "final_loss_last100": sum(losses[-100:]) / max(1, len(losses[-100:])),
    }
    save_model_folder(model, tokenizer, run.out, extra_json={"training.json": summary})
    return losses


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=OptimConfig.steps)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/policy"))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--init-from", type=Path, help="continue from a model folder (second stage)")
    parser.add_argument("--seed", type=int, default=0, help="model init and batch order")
    parser.add_argument("--lr", type=float, default=OptimConfig.lr)
    parser.add_argument("--threads", type=int, default=NUM_THREADS, help="1 is faster on a busy machine")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    began = time.monotonic()
    run = PolicyRun(
        out=args.out,
        runs_dir=args.runs_dir,
        resume=args.resume,
        init_from=args.init_from,
        seed=args.seed,
        optim=OptimConfig(steps=args.steps, lr=args.lr),
    )
    losses = train_policy(run)
    print(f"saved {args.out} final loss {losses[-1]:.4f} in {time.monotonic() - began:.0f}s", flush=True)


if __name__ == "__main__":
    main()
