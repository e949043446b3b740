"""Engine knobs shared by every backend, set from server settings or a benchmark's flags."""

from __future__ import annotations

from dataclasses import dataclass

VLLM_SWAP_MODES = ("in-place", "beside")
"""How a hot swap may bring a new version to a vLLM engine (EngineOptions.vllm_swap)."""
PREFILL_CHUNK_TOKENS = 256
"""Prompt tokens one engine step may prefill. A chunk's time is how long a decode step, a short
prompt or another model's request may wait behind a long prompt, so it is kept small; below a few
hundred tokens a chunk's fixed cost (reading every weight once) starts to dominate and the long
prompt itself slows down. bench/prefill_chunks.py measures the trade on this machine (chunk time
by size and by depth into an 8k SmolLM2 prompt). Countdown prompts (its whole context is 256
tokens) always fit in one chunk."""


@dataclass(frozen=True)
class EngineOptions:
    """Resource limits for one engine instance (one served model)."""

    cache_capacity_mb: int = 512  # KV kept in the prefix cache; LRU eviction above this
    enable_prefix_cache: bool = True
    # Sequences decoded together (over all lanes). 64 clients of the load bench keep 64 Countdown
    # rows live (a search asks for n=2), so at 64 a new request waited out the queue timeout.
    max_batch_size: int = 128
    # Prompt tokens one engine step may prefill (see PREFILL_CHUNK_TOKENS).
    prefill_chunk_tokens: int = PREFILL_CHUNK_TOKENS
    num_threads: int | None = None  # torch intra-op threads; None keeps torch's default
    vllm_block_size: int = 16
    vllm_kv_cache_gib: float = 1.0
    # How a hot swap brings a new version to a vLLM engine: "in-place" reloads the weights into the
    # running engine once the old version's requests finished (one engine's memory); "beside"
    # starts a second engine and switches at once (twice the memory, no pause for new requests).
    vllm_swap: str = "in-place"

    def __post_init__(self) -> None:
        if self.cache_capacity_mb < 1:
            raise ValueError("cache_capacity_mb must be >= 1")
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if self.vllm_swap not in VLLM_SWAP_MODES:
            raise ValueError(f"vllm_swap must be one of {VLLM_SWAP_MODES}, not {self.vllm_swap!r}")
        if self.prefill_chunk_tokens < 1:
            raise ValueError("prefill_chunk_tokens must be >= 1")
