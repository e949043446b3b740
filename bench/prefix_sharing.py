"""What the radix KV cache saves: 16 branches that share a 512-token prefix, each extended by 32.

Runs the same workload on two embedded engines in one process, radix cache on and off, and
compares prefill tokens computed and wall time; then decode throughput of the 16 branches
batched together vs one at a time. Prints a table and writes JSON.

    python -m bench.prefix_sharing [--model smollm2-135m-instruct] [--out bench/results/prefix_sharing.json]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass

from bench.report import print_table, write_json
from engine.embedded import EmbeddedEngine
from engine.options import EngineOptions
from engine.protocol import SamplingParams

FILLER = (
    "Countdown is a numbers game: combine the given numbers with addition, subtraction, "
    "multiplication and exact division to reach the target. "
)


@dataclass
class RunResult:
    label: str
    prompt_tokens_requested: int
    prompt_tokens_computed: int
    prompt_tokens_reused: int
    unique_prompt_tokens: int
    generated_tokens: int
    wall_s: float


async def branch_workload(engine: EmbeddedEngine, prefix: list[int], args: argparse.Namespace) -> float:
    """All branches submitted at once, as a search step would; returns wall seconds."""
    start = time.perf_counter()
    await asyncio.gather(*(engine.generate([prefix], branch_params(args, i)) for i in range(args.branches)))
    return time.perf_counter() - start


async def sequential_workload(engine: EmbeddedEngine, prefix: list[int], args: argparse.Namespace) -> float:
    start = time.perf_counter()
    for i in range(args.branches):
        await engine.generate([prefix], branch_params(args, i))
    return time.perf_counter() - start


def branch_params(args: argparse.Namespace, i: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=args.new_tokens, temperature=0.8, seed=i, ignore_eos=True)


def make_prefix(engine: EmbeddedEngine, num_tokens: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < num_tokens:
        ids += engine.tokenize(FILLER)
    return ids[:num_tokens]


async def measure(enable_cache: bool, args: argparse.Namespace) -> tuple[RunResult, EmbeddedEngine]:
    options = EngineOptions(enable_prefix_cache=enable_cache, num_threads=args.threads)
    engine = EmbeddedEngine(args.model, options)
    await engine.start()
    prefix = make_prefix(engine, args.prefix_tokens)
    wall = await branch_workload(engine, prefix, args)
    s = engine.cache_stats()
    label = "radix cache on" if enable_cache else "radix cache off"
    result = RunResult(
        label,
        s.prompt_tokens_requested,
        s.prompt_tokens_computed,
        s.prompt_tokens_reused,
        len(prefix),  # every branch shares the one prefix
        s.generated_tokens,
        wall,
    )
    return result, engine


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    off, off_engine = await measure(False, args)
    await off_engine.close()
    on, on_engine = await measure(True, args)
    prefix = make_prefix(on_engine, args.prefix_tokens)
    # Decode throughput on a warm cache, so both sides pay the same (near-zero) prefill.
    batched_s = await branch_workload(on_engine, prefix, args)
    sequential_s = await sequential_workload(on_engine, prefix, args)
    await on_engine.close()
    tokens = args.branches * args.new_tokens
    return {
        "config": vars(args),
        "runs": [asdict(off), asdict(on)],
        "prefill_computed_ratio_off_over_on": off.prompt_tokens_computed / on.prompt_tokens_computed,
        "computed_over_unique_with_cache": on.prompt_tokens_computed / on.unique_prompt_tokens,
        "wall_ratio_off_over_on": off.wall_s / on.wall_s,
        "decode": {
            "batched_tokens_per_s": tokens / batched_s,
            "sequential_tokens_per_s": tokens / sequential_s,
            "batched_speedup": sequential_s / batched_s,
        },
    }


def report(result: dict[str, object]) -> None:
    runs = result["runs"]
    assert isinstance(runs, list)
    rows = [
        [
            r["label"],
            r["prompt_tokens_requested"],
            r["prompt_tokens_computed"],
            r["prompt_tokens_reused"],
            r["unique_prompt_tokens"],
            f"{r['wall_s']:.2f}",
        ]
        for r in runs
    ]
    print_table(["run", "prompt req", "computed", "reused", "unique", "wall s"], rows)
    decode = result["decode"]
    assert isinstance(decode, dict)
    print(
        f"prefill computed, off/on: {result['prefill_computed_ratio_off_over_on']:.2f}x   "
        f"computed/unique with cache: {result['computed_over_unique_with_cache']:.3f}   "
        f"wall off/on: {result['wall_ratio_off_over_on']:.2f}x"
    )
    print(
        f"decode: batched {decode['batched_tokens_per_s']:.1f} tok/s, one at a time "
        f"{decode['sequential_tokens_per_s']:.1f} tok/s, speedup {decode['batched_speedup']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prefix-tokens", type=int, default=512)
    parser.add_argument("--branches", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="bench/results/prefix_sharing.json")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    report(result)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
