"""Pure functions that fix what each training step sees: learning rate and batch order.

Both depend only on the step number and a seed, so a resumed run replays exactly the
same schedule as an uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np

LENGTH_GROUP_BATCHES = 64
"""Batches per length-sorted group: big enough to cut padding, small enough to stay shuffled."""


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to `base_lr`, then cosine decay to `min_ratio * base_lr`."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr * (min_ratio + (1.0 - min_ratio) * cosine)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, num_batches: int, seed: int) -> np.ndarray:
    """(num_batches, batch_size) example indices; epochs are reshuffled, groups sorted by length."""
    if len(lengths) < batch_size:
        raise ValueError(f"need at least {batch_size} examples, have {len(lengths)}")
    rng = np.random.default_rng(seed)
    batches: list[np.ndarray] = []
    group = batch_size * LENGTH_GROUP_BATCHES
    while len(batches) < num_batches:
        permutation = rng.permutation(len(lengths))
        permutation = permutation[: len(permutation) - len(permutation) % batch_size]
        epoch: list[np.ndarray] = []
        for start in range(0, len(permutation), group):
            chunk = permutation[start : start + group]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            epoch.extend(chunk.reshape(-1, batch_size))
        batches.extend(epoch[i] for i in rng.permutation(len(epoch)))
    return np.stack(batches[:num_batches])
