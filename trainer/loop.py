"""The shared training loop: AdamW with decay on matrices only, clipped, warmup + cosine,
resumable from an atomic checkpoint every `checkpoint_every` steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.schedule import lr_at

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule settings (defaults from the Countdown calibration note)."""

    steps: int = 600
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    warmup: int = 100
    min_lr_ratio: float = 0.1
    checkpoint_every: int = 100


def make_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """Weight decay on matrices (ndim >= 2) only; norms and biases are not decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _resume(model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> tuple[int, list[float]]:
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["losses"])


def train(
    model: torch.nn.Module,
    config: OptimConfig,
    batch_at: Callable[[int], Batch],
    loss_of: Callable[[torch.nn.Module, Batch], torch.Tensor],
    checkpoint: Path,
    resume: bool,
) -> list[float]:
    """Run steps up to `config.steps` (from the checkpoint if resuming); returns per-step losses."""
    optimizer = make_optimizer(model, config)
    start, losses = _resume(model, optimizer, checkpoint) if resume and checkpoint.exists() else (0, [])
    model.train()
    began = time.monotonic()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, mininterval=15, desc="train")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.lr, config.warmup, config.steps, config.min_lr_ratio)
        loss = loss_of(model, batch_at(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}", refresh=False)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            save_checkpoint(checkpoint, {**state, "step": step + 1, "losses": losses})
            recent = losses[-config.checkpoint_every :]
            elapsed = time.monotonic() - began
            print(f"step {step + 1} loss {sum(recent) / len(recent):.4f} elapsed {elapsed:.0f}s", flush=True)
    model.eval()
    return losses
