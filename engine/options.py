"""Engine knobs shared by every backend, set from server settings or a benchmark's flags."""

from __future__ import annotations

from dataclasses import dataclass

PREFILL_CHUNK_TOKENS = 256
"""Prompt tokens one engine step may prefill. Measured on this 2-core CPU (bench/prefill_chunks.py):
a 256-token SmolLM2-135M chunk costs about 0.4 s at the start of a prompt and about 1 s at
token 7,700, where it attends to the whole prefix; 512 roughly doubles that. A chunk is how long
a decode step or another model's request may wait behind a long prompt, so it is kept near the
size at which a chunk's fixed costs (reading the weights, a few percent of a step) stop mattering,
and not larger. Countdown prompts (under 256 tokens, its whole context) always fit in one chunk."""


@dataclass(frozen=True)
class EngineOptions:
    """Resource limits for one engine instance (one served model)."""

    cache_capacity_mb: int = 512  # KV kept in the prefix cache; LRU eviction above this
    enable_prefix_cache: bool = True
    max_batch_size: int = 64  # sequences decoded together in one forward pass
    # Prompt tokens one engine step may prefill (see PREFILL_CHUNK_TOKENS).
    prefill_chunk_tokens: int = PREFILL_CHUNK_TOKENS
    num_threads: int | None = None  # torch intra-op threads; None keeps torch's default
    vllm_block_size: int = 16
    vllm_kv_cache_gib: float = 1.0

    def __post_init__(self) -> None:
        if self.cache_capacity_mb < 1:
            raise ValueError("cache_capacity_mb must be >= 1")
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if self.prefill_chunk_tokens < 1:
            raise ValueError("prefill_chunk_tokens must be >= 1")
