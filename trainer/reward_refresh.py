"""Reward refresh: retrain the claim checker paired with the policy on this round's rollouts.

The checker is a causal LM trained on the policy's replies with every step made true
(`trainer.checker`). As the policy changes, the replies it writes change, and a checker that
never saw them judges them less surely. So each round continues the served checker on the
replies this round's search produced (every finished reply, failed ones included: their steps
are rewritten true, which is what the checker learns from). The rollouts come from the policy
served during the round, so the checker trails the candidate by one round; sampling again
from the candidate would cost the round's collection time twice over on these cores.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import AutoTokenizer

from rewards.prm_checker import CheckerConfig
from trainer.checker import checker_pairs
from trainer.fine_tune import FineTune, fine_tune_causal_lm
from trainer.prm import step_markers
from trainer.prm_data import LabelledReply
from trainer.selfplay import Solved

CHECKER_REFRESH = FineTune(epochs=0.5, batch_size=32, lr=2e-4, min_steps=50)
"""Half a pass: the served checker already checks arithmetic; it only has to meet new replies."""


def rollout_replies(solved: Iterable[Solved]) -> list[LabelledReply]:
    """Every finished reply as (prompt, steps), the form `checker_pairs` rewrites."""
    return [LabelledReply(p.message, r.steps, []) for p in solved for r in p.replies]


def save_checker_files(folder: Path) -> None:
    """What makes a causal LM folder a claim-checker PRM: step markers and `checker.json`."""
    step_markers(AutoTokenizer.from_pretrained(folder)).save(folder)
    CheckerConfig().save(folder)


def refresh_checker(
    served: Path, solved: list[Solved], out: Path, runs_dir: Path, config: FineTune = CHECKER_REFRESH
) -> dict[str, object]:
    """Continue the checker at `served` on the rewritten rollouts; save a checker folder at `out`."""
    pairs = checker_pairs(rollout_replies(solved))
    return fine_tune_causal_lm(served, pairs, out, runs_dir, config, finish_folder=save_checker_files)
