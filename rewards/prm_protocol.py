"""The process reward model interface, apart from the loaders: search imports this without torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ProcessRewardModel(Protocol):
    """Scores each step of a solution: the probability that the solution is still on track."""

    def score_steps(self, prompt: str, steps: list[str]) -> list[float]: ...

    def score_batch(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]: ...
