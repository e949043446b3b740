"""The `claim-checker` style: a causal LM that checks what each step claims, as a PRM.

A step like `13*1=72 (72)` is right or wrong by arithmetic and bookkeeping the writer can do
only digit by digit. A token classifier that reads the whole step once must do that in one
forward pass, and the 4-layer one trained here never learned to (step AUROC 0.53 on the third
step, where the policy's slips are). A causal LM does it the way it writes: teacher-forced on
the step, it predicts each token after the `=` from the ones before, so the probability it
gives the written result and numbers-left list is high exactly when they are true. Trained
only on true steps (`trainer.checker`), it has no reason to expect the target where the
target is not what the arithmetic gives, unlike the policy, which learned that last steps
reach it.

A step's score is the product of those token probabilities (the claim: every token after the
`claim_after` text, through the token that ends the step). A step that claims nothing (the
answer line) scores 1: it is judged through the steps before it, so aggregate with `min`.
The folder holds the LM, `prm.json` (step markers, as for token classifiers) and `checker.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from rewards.prm_batching import DEFAULT_BATCH_SIZE, MarkedStepsPRM

CHECKER_METADATA_FILE = "checker.json"


@dataclass(frozen=True)
class CheckerConfig:
    """Where a step's claim starts, stored beside the weights in `checker.json`."""

    claim_after: str = "="

    def save(self, folder: Path) -> None:
        (folder / CHECKER_METADATA_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> CheckerConfig:
        return cls(**json.loads((folder / CHECKER_METADATA_FILE).read_text()))


def claim_scores(
    token_logprobs: list[float], ids: list[int], claim_id: int, step_end_ids: set[int]
) -> list[float]:
    """At every position, exp(sum of the log-probabilities of the claim tokens so far in the
    current step): a step's score is the value at its end token. A step starts after an end
    token; its claim starts after its first `claim_id` token."""
    scores: list[float] = []
    total, in_claim = 0.0, False
    for logprob, token in zip(token_logprobs, ids, strict=True):
        if in_claim:
            total += logprob
        in_claim = in_claim or token == claim_id
        scores.append(math.exp(total))
        if token in step_end_ids:
            total, in_claim = 0.0, False
    return scores


class ClaimCheckerPRM(MarkedStepsPRM):
    """p(the step's claim) under a causal LM trained on true steps only."""

    model_class = AutoModelForCausalLM

    def __init__(self, folder: Path | str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(folder, batch_size)
        self.config = CheckerConfig.load(Path(folder))
        claim = self.tokenizer.encode(self.config.claim_after, add_special_tokens=False)
        if len(claim) != 1:
            raise ValueError(f"claim_after {self.config.claim_after!r} must be one token, got {claim}")
        self.claim_id = int(claim[0])
        self.step_end_ids = {self.markers.step_end_token_id, self.markers.final_end_token_id}

    def positive_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, T, V)
        logprobs = logits[:, :-1].float().log_softmax(-1)  # (B, T-1, V): predicts tokens 1..T-1
        taken = logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
        taken = torch.cat([torch.zeros_like(taken[:, :1]), taken], dim=1)  # (B, T): token 0 is bos
        rows = [
            claim_scores(lp, ids, self.claim_id, self.step_end_ids)
            for lp, ids in zip(taken.tolist(), input_ids.tolist(), strict=True)
        ]
        return torch.tensor(rows)  # (B, T)
