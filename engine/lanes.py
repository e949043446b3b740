"""Live sequences grouped by context length, each group decoded as one left-padded batch.

A padded batch computes every row at the width of its longest row, and re-pads all of its rows
whenever one is admitted. Rows are therefore placed, when they start decoding, in the lane of
their context-length band (up to 256 tokens, up to 512, up to 1024, ...): rows of one band
waste at most about half of their width on padding, and a long prompt never widens the batch of
short requests. Each lane is one forward pass per step; with every request in one band (the
usual case) that is the single batch it always was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from transformers import PretrainedConfig

from engine.kv_batch import PaddedKVBatch
from engine.radix_cache import TOKEN_DIM
from engine.sequence import SequenceState

NARROWEST_LANE_TOKENS = 256


def lane_key(num_tokens: int) -> int:
    """The band of a context length: 0 up to 256 tokens, then one per doubling."""
    return max(0, (max(1, num_tokens) - 1).bit_length() - NARROWEST_LANE_TOKENS.bit_length() + 1)


@dataclass
class Lane:
    batch: PaddedKVBatch
    running: list[SequenceState] = field(default_factory=list)

    def keep(self, rows: list[int]) -> None:
        self.batch.keep_rows(rows)
        self.running = [self.running[r] for r in rows]


class Lanes:
    def __init__(self, config: PretrainedConfig) -> None:
        self._config = config
        self._lanes: dict[int, Lane] = {}

    def add(self, seqs: Sequence[SequenceState], kv: torch.Tensor) -> None:
        """Start `seqs`, which share the prompt KV `kv` ((L, 2, H, T, D)), in their band's lane."""
        key = lane_key(kv.shape[TOKEN_DIM])
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(PaddedKVBatch(self._config))
        lane.batch.add_rows([kv] * len(seqs))
        lane.running.extend(seqs)

    def __len__(self) -> int:
        """Live sequences over every lane (without building their list)."""
        return sum(len(lane.running) for lane in self._lanes.values())

    def live(self) -> list[Lane]:
        """The lanes with sequences, narrowest first."""
        return [self._lanes[key] for key in sorted(self._lanes) if self._lanes[key].running]

    def sequences(self) -> list[SequenceState]:
        return [seq for lane in self.live() for seq in lane.running]

    def drop_empty(self) -> None:
        """Forget emptied lanes, so that their (padded) caches are freed."""
        self._lanes = {key: lane for key, lane in self._lanes.items() if lane.running}
