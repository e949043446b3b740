"""The search budget: generated tokens over all branches, a wall-clock deadline, early stopping.

Token accounting is exact: before every engine call the caller asks `cap_new_tokens` for a
`max_new_tokens` whose worst case (every sequence runs to the cap) fits in what remains, and
afterwards `charge`s the tokens the continuations really hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Budget:
    """Mutable per-search counters; `is_exhausted` is the single stop test strategies use."""

    max_tokens: int
    max_seconds: float
    stop_on_verified: bool = False
    tokens_used: int = 0
    has_verified_answer: bool = False
    started: float = field(default_factory=time.monotonic)

    def remaining_tokens(self) -> int:
        return max(0, self.max_tokens - self.tokens_used)

    def remaining_seconds(self) -> float:
        return max(0.0, self.max_seconds - (time.monotonic() - self.started))

    def cap_new_tokens(self, num_sequences: int, wanted: int) -> int:
        """The largest `max_new_tokens` <= `wanted` with num_sequences * it <= remaining tokens."""
        if num_sequences < 1:
            raise ValueError("num_sequences must be >= 1")
        return max(0, min(wanted, self.remaining_tokens() // num_sequences))

    def charge(self, num_tokens: int) -> None:
        self.tokens_used += num_tokens
        if self.tokens_used > self.max_tokens:  # cap_new_tokens makes this unreachable
            raise RuntimeError(f"token budget overrun: {self.tokens_used} > {self.max_tokens}")

    def mark_verified(self) -> None:
        self.has_verified_answer = True

    def is_exhausted(self) -> bool:
        if self.stop_on_verified and self.has_verified_answer:
            return True
        return self.remaining_tokens() == 0 or self.remaining_seconds() == 0.0
