"""Engine knobs shared by every backend, set from server settings or a benchmark's flags."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    """Resource limits for one engine instance (one served model)."""

    cache_capacity_mb: int = 512  # KV kept in the prefix cache; LRU eviction above this
    enable_prefix_cache: bool = True
    max_batch_size: int = 64  # sequences decoded together in one forward pass
    num_threads: int | None = None  # torch intra-op threads; None keeps torch's default
    vllm_block_size: int = 16
    vllm_kv_cache_gib: float = 1.0

    def __post_init__(self) -> None:
        if self.cache_capacity_mb < 1:
            raise ValueError("cache_capacity_mb must be >= 1")
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
