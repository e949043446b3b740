"""A batch of sequences of different lengths decoded in one forward pass.

Rows are left-padded: row i's KV occupies the last `lengths[i]` positions of the batch cache, so
one new token per row always lands in the same column and the cache can grow by plain appends.
Rows are only re-laid out when the batch changes (sequences admitted or finished).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PretrainedConfig

from engine.growable_cache import growable_cache, layer_kv, set_layer_kv
from engine.radix_cache import TOKEN_DIM


class PaddedKVBatch:
    def __init__(self, config: PretrainedConfig) -> None:
        self._config = config
        self.cache: DynamicCache | None = None
        self.lengths: list[int] = []  # valid (right-aligned) tokens per row

    @property
    def width(self) -> int:
        return max(self.lengths, default=0)

    def __len__(self) -> int:
        return len(self.lengths)

    def attention_mask(self, extra: int = 1) -> torch.Tensor:
        """(B, width + extra) mask: 1 over each row's valid tokens and the `extra` new ones."""
        width = self.width + extra
        mask = torch.zeros(len(self.lengths), width, dtype=torch.long)
        for row, length in enumerate(self.lengths):
            mask[row, width - length - extra :] = 1
        return mask

    def row_kv(self, row: int, first_token: int = 0) -> torch.Tensor:
        """(L, 2, H, lengths[row] - first_token, D): one row's KV without padding, from its
        `first_token`-th token (a row leaving the batch copies out only what the cache lacks)."""
        assert self.cache is not None
        start = self.width - self.lengths[row] + first_token
        per_layer = [layer_kv(self.cache, i) for i in range(len(self.cache.layers))]
        return torch.stack([torch.stack((k[row, :, start:], v[row, :, start:])) for k, v in per_layer])

    def add_rows(self, rows: Sequence[torch.Tensor]) -> None:
        """Append rows given as (L, 2, H, T_i, D) tensors, re-padding everything to one width."""
        if not rows:
            return
        new_lengths = [r.shape[TOKEN_DIM] for r in rows]
        width = max([self.width, *new_lengths])
        new = torch.stack([_left_pad(r, width) for r in rows])  # (N, L, 2, H, width, D)
        cache = growable_cache(self._config)
        for i in range(new.shape[1]):
            keys, values = new[:, i, 0], new[:, i, 1]
            if self.cache is not None and self.lengths:
                old_keys, old_values = layer_kv(self.cache, i)
                keys = torch.cat((_left_pad(old_keys, width, dim=2), keys))
                values = torch.cat((_left_pad(old_values, width, dim=2), values))
            cache.update(keys, values, i)
        self.cache = cache
        self.lengths = self.lengths + new_lengths

    def keep_rows(self, rows: Sequence[int]) -> None:
        """Drop every row not in `rows` (in that order) and trim columns no row uses any more."""
        if self.cache is None:
            return
        if not rows:
            self.cache, self.lengths = None, []
            return
        lengths = [self.lengths[r] for r in rows]
        trim = self.width - max(lengths)
        index = torch.tensor(list(rows))
        for i in range(len(self.cache.layers)):
            keys, values = layer_kv(self.cache, i)  # read both before either setter runs
            set_layer_kv(
                self.cache,
                i,
                keys.index_select(0, index)[:, :, trim:].contiguous(),
                values.index_select(0, index)[:, :, trim:].contiguous(),
            )
        self.lengths = lengths

    def grow(self) -> None:
        """Record the token every row received in the last forward pass."""
        self.lengths = [n + 1 for n in self.lengths]


def _left_pad(t: torch.Tensor, width: int, dim: int = TOKEN_DIM) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    pad = [0, 0] * (t.dim() - dim - 1) + [missing, 0]
    return F.pad(t, pad)
