"""Under a tiny memory cap the engine evicts unlocked KV and keeps generating correctly."""

from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams

from .conftest import EngineRunner


def test_small_cap_evicts_and_outputs_do_not_change():
    small = EngineRunner(EngineOptions(cache_capacity_mb=1))  # ~45 tokens of SmolLM2 KV
    try:
        params = SamplingParams(max_new_tokens=6, temperature=0)
        prompts = [
            small.engine.apply_chat_template([ChatMessage("user", f"Say the number {i}.")]) for i in range(4)
        ]
        first = [small.run(small.engine.generate([p], params))[0][0].token_ids for p in prompts]
        stats = small.engine.cache_stats()
        assert stats.evictions > 0
        assert stats.cache_bytes <= stats.capacity_bytes
        again = [small.run(small.engine.generate([p], params))[0][0].token_ids for p in prompts]
        assert again == first
    finally:
        small.close()
