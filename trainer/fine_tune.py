"""Continue a causal LM's training on new (prompt, reply) pairs: the learner's one SFT step.

Expert iteration (the policy on its best paths) and the reward refresh (the checker on true
rewrites of the rollouts) are the same operation on different data: a short, low-rate pass
from the served weights, loss on the reply only, resumable from its checkpoint after a kill,
and saved as a whole model folder (temp folder, then rename).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from trainer.checkpoint import save_model_folder
from trainer.loop import OptimConfig, train
from trainer.policy import causal_lm_loss, collate
from trainer.policy_data import encode_pairs
from trainer.schedule import length_grouped_batches


@dataclass(frozen=True)
class FineTune:
    """How long and how hard to continue training."""

    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 2e-4
    warmup: int = 10
    min_steps: int = 20
    seed: int = 0

    def optim(self, num_examples: int) -> OptimConfig:
        steps = max(self.min_steps, round(self.epochs * num_examples / self.batch_size))
        return OptimConfig(steps=steps, lr=self.lr, warmup=min(self.warmup, steps // 4), checkpoint_every=50)


def fine_tune_causal_lm(
    init: Path,
    pairs: list[tuple[str, str]],
    out: Path,
    runs_dir: Path,
    config: FineTune,
    finish_folder: Callable[[Path], None] | None = None,
) -> dict[str, object]:
    """Continue the model at `init` on `pairs` and save it at `out` (`finish_folder` adds files
    to the saved folder); returns the training summary."""
    tokenizer = AutoTokenizer.from_pretrained(init)
    model = LlamaForCausalLM.from_pretrained(init, use_safetensors=True)
    examples = encode_pairs(tokenizer, pairs)
    optim = config.optim(len(examples))
    batch_size = min(config.batch_size, len(examples))
    schedule = length_grouped_batches(examples.lengths(), batch_size, optim.steps, config.seed)
    torch.manual_seed(config.seed)
    pad_id = int(tokenizer.pad_token_id)
    losses = train(
        model,
        optim,
        batch_at=lambda step: collate(examples, schedule[step], pad_id),
        loss_of=causal_lm_loss,
        checkpoint=runs_dir / "checkpoint.pt",
        resume=True,
    )
    summary: dict[str, object] = {
        "init_from": str(init),
        "num_examples": len(examples),
        "steps": optim.steps,
        "lr": optim.lr,
        "final_loss_last20": sum(losses[-20:]) / max(1, len(losses[-20:])),
    }
    save_model_folder(model.eval(), tokenizer, out, extra_json={"training.json": summary})
    if finish_folder is not None:
        finish_folder(out)
    return summary
