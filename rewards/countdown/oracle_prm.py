"""The exact step labeller behind the PRM interface: a perfect process reward, for diagnostics.

Search benchmarks run with it to find each strategy's ceiling (what it would reach with a PRM
that never errs), which separates a weak strategy from a weak PRM. Never used to serve.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.countdown.problems import parse_prompt
from rewards.countdown.verifier import label_steps


class OracleCountdownPRM:
    """`rewards.prm.ProcessRewardModel` scoring 1.0 for an exactly correct step, else 0.0."""

    def score_steps(self, prompt: str, steps: list[str]) -> list[float]:
        labels = label_steps(parse_prompt(prompt), "\n".join(steps))
        # A trailing non-answer line that label_steps does not count is judged wrong.
        return [float(ok) for ok in labels] + [0.0] * (len(steps) - len(labels))

    def score_batch(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]:
        return [self.score_steps(prompt, steps) for prompt, steps in items]
