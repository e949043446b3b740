"""DPO on sibling replies: from one prefix, a sound continuation against a failed one.

Pairs come from the search trees themselves. Each failed reply is paired with the sound reply
of the same problem that shares the most leading steps with it; the shared steps become part of
the prompt, so the preference is about the first step where the two went different ways, the
step search learned something about. TRL's `DPOTrainer` does the optimisation, against the model
it starts from as the frozen reference (the expert-iteration candidate).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trainer.checkpoint import save_model_folder
from trainer.selfplay import Solved
from trainer.tokenizer import BOS, REPLY_SEPARATOR, STEP_END


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class DpoConfig:
    max_pairs_per_problem: int = 4
    beta: float = 0.1
    lr: float = 5e-5
    batch_size: int = 16
    epochs: float = 1.0
    seed: int = 0


def _shared_steps(a: list[str], b: list[str]) -> int:
    count = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        count += 1
    return count


def sibling_pairs(solved: Iterable[Solved], max_per_problem: int) -> list[PreferencePair]:
    """Per problem, up to `max_per_problem` (sound, failed) pairs split after their shared steps."""
    pairs: list[PreferencePair] = []
    for problem in solved:
        sound = [r for r in problem.replies if r.is_sound]
        failed = [r for r in problem.replies if not r.is_verified]
        found: list[PreferencePair] = []
        for bad in failed:
            good = max(sound, key=lambda r: _shared_steps(r.steps, bad.steps), default=None)
            if good is None:
                break
            shared = _shared_steps(good.steps, bad.steps)
            chosen, rejected = good.steps[shared:], bad.steps[shared:]
            if not chosen or not rejected:
                continue
            prefix = "".join(step + STEP_END for step in good.steps[:shared])
            prompt = f"{BOS}{problem.message}{REPLY_SEPARATOR}{prefix}"
            found.append(PreferencePair(prompt, STEP_END.join(chosen), STEP_END.join(rejected)))
        # The pairs that share the most steps first: they isolate one decision.
        found.sort(key=lambda p: -p.prompt.count(STEP_END))
        pairs.extend(found[:max_per_problem])
    return pairs


def train_dpo(
    init: Path, pairs: list[PreferencePair], out: Path, runs_dir: Path, config: DpoConfig
) -> dict[str, object]:
    """DPO from `init` (also the reference model); saves the folder at `out`. Resumes from the
    last checkpoint TRL wrote under `runs_dir`."""
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(init)
    model = LlamaForCausalLM.from_pretrained(init, use_safetensors=True)
    reference = LlamaForCausalLM.from_pretrained(init, use_safetensors=True)
    data = Dataset.from_dict(
        {
            "prompt": [p.prompt for p in pairs],
            "chosen": [p.chosen for p in pairs],
            "rejected": [p.rejected for p in pairs],
        }
    )
    steps = max(10, round(config.epochs * len(pairs) / config.batch_size))
    args = DPOConfig(
        output_dir=str(runs_dir),
        per_device_train_batch_size=config.batch_size,
        max_steps=steps,
        learning_rate=config.lr,
        beta=config.beta,
        seed=config.seed,
        report_to="none",
        use_cpu=True,
        logging_steps=max(1, steps // 10),
        save_strategy="steps",
        save_steps=max(10, steps // 4),
        save_total_limit=1,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = DPOTrainer(
        model=model, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer
    )
    has_checkpoint = any(runs_dir.glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    summary: dict[str, object] = {
        "init_from": str(init),
        "num_pairs": len(pairs),
        "steps": steps,
        "beta": config.beta,
        "lr": config.lr,
        "train_loss": float(result.training_loss),
    }
    save_model_folder(model.eval(), tokenizer, out, extra_json={"training.json": summary})
    return summary
