"""Step labels for the PRM on the policy's own replies, from one of two sources.

`rollout` (Math-Shepherd): each step prefix is completed `rollouts` times (at
`rollout_temperature`) and its soft label is the fraction of completions whose answer
verifies. It needs no step oracle, but costs ~30 generations per reply and is noisy: with
pass@1 near 0.1, a step that still wins 10% of the time is labelled 0 in 43% of cases (0.9^8).

`exact` (PRM800K): each step is labelled by the task's step checker (arithmetic, numbers used,
target still reachable), the way human annotators label math steps. It costs one generation
per reply, so the PRM can see ~30x more steps for the same compute. Measured (2026-12-01): 61k
replies of 16k problems at T=0.3, one epoch (15 min), raised the step AUROC on the first two
steps from 0.55/0.51 to 0.63/0.59 but not the pick of 1 in 6 (0.153 either way); 2.5 epochs at
twice the lr did worse. The bundled PRM is still the rollout one.

`ternary` (PRM800K's positive/neutral/negative): the same replies, but a right step on a dead
end is graded 0.5 instead of 0, and the steps after a dead end are still graded right or wrong,
so every step teaches bookkeeping and arithmetic. Measured (2026-12-01, same 61k replies, one
epoch): AUROC for "this step is right" 0.75 on the first two steps, but 0.53 on the third,
where the policy's typical slip is a false equation that claims the target; the pick of 1 in 6
stayed at 0.140 (min). A 4-layer PRM does not check `a*b=c` in one forward pass.

Either way the answer line's label is whether the reply verifies, and work is done in chunks
cached atomically under `runs/prm/`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from rewards.countdown.problems import Problem, format_prompt
from rewards.countdown.steps import split_reply
from rewards.countdown.verifier import grade_steps, label_steps, verify_reply
from trainer.checkpoint import weights_digest
from trainer.generation import Sampling, continue_texts, reply_prefix
from trainer.policy_data import training_problems

PRM_DATA_SEED = 2
MAX_STEP_LINES = 4
"""A well-formed reply has 3 step lines; more are rolled out only up to this cap."""
MAX_ROLLOUT_TOKENS = 80
"""After at least one step at most ~55 tokens remain; the cap stops runaway rows stalling a batch."""


LabelSource = Literal["rollout", "exact", "ternary"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("rollout", "exact", "ternary")


@dataclass(frozen=True)
class PrmDataConfig:
    """Size and seeds of the labelled set (the cache folder name encodes them)."""

    labels: LabelSource = "rollout"
    num_problems: int = 1024
    replies_per_problem: int = 1
    """Distinct samples are kept; repeats of a reply add no information."""
    rollouts: int = 8
    # Below 1.0 on purpose: at T=1.0 only ~5% of the policy's completions verify, so even
    # prefixes that keep the target reachable score ~0 and the labels cannot tell them from
    # dead ends (the first PRM, trained that way, scored ~0.03 everywhere).
    rollout_temperature: float = 0.7
    # The replies whose steps get labelled: near search's sampling temperature, so the PRM
    # learns on the steps search will propose. At 1.0 only ~6% of steps were correct. (For
    # exact labels 0.3 is the better choice: 9% of steps correct, and 4 samples per problem
    # are still 92% distinct.)
    reply_temperature: float = 0.7
    prefixes_per_call: int = 16
    chunk_problems: int = 32
    seed: int = PRM_DATA_SEED

    def folder_name(self, policy_digest: str) -> str:
        """Cache folder: the labels depend on the policy weights as much as on the sizes."""
        if self.labels != "rollout":
            return (
                f"{self.labels}-{policy_digest}-seed{self.seed}-n{self.num_problems}"
                f"-x{self.replies_per_problem}-r{self.reply_temperature:g}"
            )
        return (
            f"labels-{policy_digest}-seed{self.seed}-n{self.num_problems}-k{self.rollouts}"
            f"-t{self.rollout_temperature:g}-r{self.reply_temperature:g}"
        )


@dataclass(frozen=True)
class LabelledReply:
    """A sampled reply as steps (answer line last when present) with one soft label per step."""

    prompt: str
    steps: list[str]
    labels: list[float]


def _prefix_jobs(prompts: list[str], replies: list[str]) -> list[tuple[int, str]]:
    """(reply index, text to continue) for every step prefix of every reply."""
    jobs: list[tuple[int, str]] = []
    for index, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        lines = split_reply(reply).step_lines[:MAX_STEP_LINES]
        jobs.extend(
            (index, reply_prefix(prompt, "\n".join(lines[: i + 1]) + "\n")) for i in range(len(lines))
        )
    return jobs


def _rollout_labels(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: list[Problem],
    jobs: list[tuple[int, str]],
    config: PrmDataConfig,
) -> list[float]:
    """Fraction of `config.rollouts` completions of each job prefix that verify."""
    sampling = Sampling(
        temperature=config.rollout_temperature,
        num_return_sequences=config.rollouts,
        max_new_tokens=MAX_ROLLOUT_TOKENS,
    )
    labels: list[float] = []
    for start in range(0, len(jobs), config.prefixes_per_call):
        group = jobs[start : start + config.prefixes_per_call]
        completions = continue_texts(model, tokenizer, [text for _, text in group], sampling)
        for (index, text), outs in zip(group, completions, strict=True):
            partial = text.split("\n", 1)[1]
            wins = sum(verify_reply(problems[index], partial + out) for out in outs)
            labels.append(wins / config.rollouts)
    return labels


def labelled_reply(problem: Problem, prompt: str, reply: str, step_labels: list[float]) -> LabelledReply:
    """The reply's first `MAX_STEP_LINES` step lines with the first of `step_labels`, then its
    answer line labelled by whether the reply verifies (only when no step line was left out)."""
    parts = split_reply(reply)
    steps = parts.step_lines[:MAX_STEP_LINES]
    labels = step_labels[: len(steps)]
    if parts.answer_line is not None and len(parts.step_lines) <= MAX_STEP_LINES:
        steps, labels = [*steps, parts.answer_line], [*labels, float(verify_reply(problem, reply))]
    return LabelledReply(prompt=prompt, steps=steps, labels=labels)


def exact_chunk(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], config: PrmDataConfig
) -> list[LabelledReply]:
    """Sample `replies_per_problem` replies per problem and label each distinct one by the
    step checker: binary (`exact`) or with dead ends graded neutral (`ternary`)."""
    prompts = [format_prompt(p) for p in problems]
    sampling = Sampling(temperature=config.reply_temperature, num_return_sequences=config.replies_per_problem)
    samples = continue_texts(model, tokenizer, [reply_prefix(p) for p in prompts], sampling)
    records: list[LabelledReply] = []
    for problem, prompt, replies in zip(problems, prompts, samples, strict=True):
        for reply in dict.fromkeys(replies):
            if config.labels == "ternary":
                step_labels = grade_steps(problem, reply)
            else:
                step_labels = [float(ok) for ok in label_steps(problem, reply)]
            records.append(labelled_reply(problem, prompt, reply, step_labels))
    return records


def label_chunk(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], config: PrmDataConfig
) -> list[LabelledReply]:
    """Labelled replies for `problems` from the configured source."""
    if config.labels != "rollout":
        return exact_chunk(model, tokenizer, problems, config)
    return rollout_chunk(model, tokenizer, problems, config)


def rollout_chunk(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], config: PrmDataConfig
) -> list[LabelledReply]:
    """Sample one reply per problem and label its steps by rollouts."""
    prompts = [format_prompt(p) for p in problems]
    reply_sampling = Sampling(temperature=config.reply_temperature)
    samples = continue_texts(model, tokenizer, [reply_prefix(p) for p in prompts], reply_sampling)
    replies = [outs[0] for outs in samples]
    jobs = _prefix_jobs(prompts, replies)
    step_labels = iter(_rollout_labels(model, tokenizer, problems, jobs, config))
    records: list[LabelledReply] = []
    for problem, prompt, reply in zip(problems, prompts, replies, strict=True):
        num_steps = len(split_reply(reply).step_lines[:MAX_STEP_LINES])
        records.append(labelled_reply(problem, prompt, reply, [next(step_labels) for _ in range(num_steps)]))
    return records


def _write_json_atomic(path: Path, payload: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def load_or_label(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    runs_dir: Path,
    config: PrmDataConfig,
    policy_digest: str,
    shard: int = 0,
    num_shards: int = 1,
) -> list[LabelledReply]:
    """Labelled replies of this shard's chunks, generating only those not already cached.

    Chunks are seeded by their index, so shards run in separate processes (single-threaded
    each, which wins on a busy machine) produce exactly what one process would.
    """
    folder = runs_dir / config.folder_name(policy_digest)
    folder.mkdir(parents=True, exist_ok=True)
    problems = training_problems(config.seed, config.num_problems)
    records: list[LabelledReply] = []
    starts = list(enumerate(range(0, len(problems), config.chunk_problems)))[shard::num_shards]
    for chunk_index, start in tqdm(starts, desc="prm labels", mininterval=30):
        path = folder / f"chunk-{chunk_index:05d}.json"
        if not path.exists():
            began = time.monotonic()
            torch.manual_seed(config.seed * 1_000_003 + chunk_index)
            chunk = label_chunk(model, tokenizer, problems[start : start + config.chunk_problems], config)
            _write_json_atomic(path, [asdict(r) for r in chunk])
            print(f"chunk {chunk_index} labelled in {time.monotonic() - began:.1f}s", flush=True)
        records.extend(LabelledReply(**r) for r in json.loads(path.read_text()))
    return records


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the labelled set, shared by this module's CLI and `trainer.prm`."""
    parser.add_argument("--labels", choices=LABEL_SOURCES, default=PrmDataConfig.labels)
    parser.add_argument("--num-problems", type=int, default=PrmDataConfig.num_problems)
    parser.add_argument("--replies-per-problem", type=int, default=PrmDataConfig.replies_per_problem)
    parser.add_argument("--rollouts", type=int, default=PrmDataConfig.rollouts)
    parser.add_argument("--rollout-temperature", type=float, default=PrmDataConfig.rollout_temperature)
    parser.add_argument("--reply-temperature", type=float, default=PrmDataConfig.reply_temperature)


def data_config(args: argparse.Namespace) -> PrmDataConfig:
    """The `PrmDataConfig` the flags of `add_data_arguments` describe."""
    return PrmDataConfig(
        labels=args.labels,
        num_problems=args.num_problems,
        replies_per_problem=args.replies_per_problem,
        rollouts=args.rollouts,
        rollout_temperature=args.rollout_temperature,
        reply_temperature=args.reply_temperature,
    )


def main(argv: list[str] | None = None) -> None:
    """Label one shard: `python -m trainer.prm_data --shard 0 --num-shards 2` (one per process)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", type=Path, default=Path("models/countdown"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/prm"))
    add_data_arguments(parser)
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.policy)
    policy = LlamaForCausalLM.from_pretrained(args.policy, use_safetensors=True).eval()
    digest = weights_digest(args.policy)
    records = load_or_label(
        policy, tokenizer, args.runs_dir, data_config(args), digest, args.shard, args.num_shards
    )
    print(f"shard {args.shard}/{args.num_shards}: {len(records)} labelled replies", flush=True)


if __name__ == "__main__":
    main()
