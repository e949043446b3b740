"""What one chunk of a chunked prefill costs, by chunk size and by how deep into the prompt it is.

A chunk's time is how long the other requests (decode steps, short prompts, other models) may
wait behind a long prompt; its time per token is what chunking costs the long prompt itself.
Measured for SmolLM2 at offsets up to its 8k context and for countdown (256-token context).
Prints a table and writes JSON; this is what `engine.options.PREFILL_CHUNK_TOKENS` rests on.

With `--weights dense int4` each chunk is timed with both prompt passes the engine has, one
after the other on every repeat (a ratio from one run): transformers' forward on the fp32
weights, and the fused layers on packed int4 weights that an int4 model's prompts take
(`engine.prefill.prefill_step`).

    python -m bench.prefill_chunks [--sizes 128 256 512 1024] [--repeats 3] [--weights dense int4]
        [--models smollm2-135m-instruct] [--out bench/results/prefill_chunks.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from bench.report import print_table, write_json
from engine.fast_decode import DecodeStep, decode_step
from engine.model_config import DecodeWeights
from engine.models import resolve_model_dir
from engine.prefill import PrefillStep, advance, prefill_step, start_prefill
from engine.protocol import SamplingParams
from engine.sequence import GroupState

MODEL_OFFSETS = {"smollm2-135m-instruct": (0, 2048, 4096, 7168), "countdown": (0,)}
COUNTDOWN_CONTEXT = 256


@dataclass
class ChunkTiming:
    model: str
    weights: str
    offset: int
    chunk_tokens: int
    median_s: float
    ms_per_token: float


def _group(prompt: list[int]) -> GroupState:
    return GroupState(0, prompt, SamplingParams(), False, lambda event: None)


def _load(model_id: str) -> PreTrainedModel:
    folder = resolve_model_dir(model_id)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
    return model.eval()


def _random_kv(model: PreTrainedModel, num_tokens: int) -> torch.Tensor:
    """(L, 2, H, T, D) stand-in KV for a prefix: attention costs the same whatever the values,
    and computing a real 7k-token prefix first would double the bench's time."""
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    shape = (config.num_hidden_layers, 2, config.num_key_value_heads, num_tokens, head_dim)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def time_chunk(
    model: PreTrainedModel,
    steps: tuple[PrefillStep, DecodeStep],
    prompt: list[int],
    kv: torch.Tensor | None,
    offset: int,
    size: int,
) -> float:
    """Seconds for one `size`-token chunk that follows `offset` tokens of KV."""
    prefix = None if kv is None or offset == 0 else kv[:, :, :, :offset].contiguous()
    # One token more than the chunk: the prompt's last token is a decode step's, not the chunk's.
    job = start_prefill(_group(prompt[: offset + size + 1]), model.config, prefix, offset)
    start = time.perf_counter()
    advance(*steps, job, size)
    return time.perf_counter() - start


def engine_steps(model: PreTrainedModel, weights: DecodeWeights) -> tuple[PrefillStep, DecodeStep]:
    """The prompt pass and decode step the engine would run for `model` held as `weights`."""
    decode = decode_step(model, weights)
    return prefill_step(model, decode), decode


def measure(model_id: str, sizes: list[int], repeats: int, weights: list[DecodeWeights]) -> list[ChunkTiming]:
    model = _load(model_id)
    steps = {mode: engine_steps(model, mode) for mode in weights}
    offsets = MODEL_OFFSETS[model_id]
    context = COUNTDOWN_CONTEXT if model_id == "countdown" else max(offsets) + max(sizes)
    vocab = int(model.config.vocab_size)
    prompt = [(7 * i + 3) % vocab for i in range(context + 1)]  # content does not change the cost
    kv = _random_kv(model, max(offsets)) if max(offsets) else None
    rows = []
    for offset in offsets:
        for size in sizes:
            if offset + size > context:
                continue
            times: dict[str, list[float]] = {mode: [] for mode in steps}
            for _ in range(repeats):
                for mode, pair in steps.items():
                    times[mode].append(time_chunk(model, pair, prompt, kv, offset, size))
            for name, measured in times.items():
                median = statistics.median(measured)
                ms = round(1000 * median / size, 2)
                rows.append(ChunkTiming(model_id, name, offset, size, round(median, 3), ms))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_OFFSETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", nargs="+", choices=("dense", "int4"), default=["dense"])
    parser.add_argument("--out", default="bench/results/prefill_chunks.json")
    args = parser.parse_args()
    with torch.inference_mode():
        rows = [
            row
            for model_id in args.models
            for row in measure(model_id, args.sizes, args.repeats, args.weights)
        ]
    print_table(
        ["model", "weights", "offset", "chunk", "median s", "ms/token"],
        [(r.model, r.weights, r.offset, r.chunk_tokens, r.median_s, r.ms_per_token) for r in rows],
    )
    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f} on {os.cpu_count()} CPUs")
    write_json(
        args.out,
        {
            "load_average_1m": load,
            "torch_threads": torch.get_num_threads(),
            "rows": [asdict(r) for r in rows],
        },
    )


if __name__ == "__main__":
    main()
