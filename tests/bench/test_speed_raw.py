"""`bench.speed_raw` on the real Countdown engine: the meter counts every decode row the engine
generates and each prompt's prefill, and the raw rate runs the engine's own decode step."""

from __future__ import annotations

import asyncio

from bench.speed_raw import ForwardMeter, engine_worker, raw_decode_rate
from engine.embedded import EmbeddedEngine
from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams

NUM_TOKENS = 12


def test_meter_counts_decode_rows_and_prefills() -> None:
    async def run() -> None:
        engine = EmbeddedEngine("countdown", EngineOptions(enable_prefix_cache=False))
        await engine.start()
        try:
            worker = engine_worker(engine)
            decode = worker.decode
            prompt = engine.apply_chat_template([ChatMessage("user", "target=24 numbers=3,8,2,5")])
            assert raw_decode_rate(worker, prompt, batch=4, steps=3) > 0
            meter = ForwardMeter(worker)
            params = SamplingParams(max_new_tokens=NUM_TOKENS, temperature=0, ignore_eos=True, n=3)
            (group,) = await engine.generate([prompt], params)
            counts = meter.snapshot()
            meter.close()
            assert worker.decode is decode  # the engine is left as it was
        finally:
            await engine.close()
        # The prompt's last token is a one-row decode step (engine/prefill.py), whose logits give
        # the first token; each later token comes from a decode step of all 3 rows.
        assert [len(c.token_ids) for c in group] == [NUM_TOKENS] * 3
        assert counts.decode_steps == NUM_TOKENS and counts.decode_rows == 1 + 3 * (NUM_TOKENS - 1)
        assert counts.prefill_calls == 1 and counts.prefill_tokens == len(prompt) - 1
        assert counts.decode_s > 0 and counts.prefill_s > 0

    asyncio.run(run())
