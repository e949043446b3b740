"""One real SmolLM2 engine per test module (loading takes well under a second once converted)."""

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest

from engine.embedded import EmbeddedEngine
from engine.model_config import DecodeWeights
from engine.models import clear_registered_models, find_model, register_models
from engine.options import EngineOptions
from engine.protocol import Continuation, Engine, SamplingParams, StreamDelta

SMOLLM2 = "smollm2-135m-instruct"


class EngineRunner:
    """Runs an engine on its own event loop so sync tests can await it."""

    def __init__(self, options: EngineOptions) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = EmbeddedEngine(SMOLLM2, options)
        self.run(self.engine.start())

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.engine.close())
        self.loop.close()


def runner_decoding(decode_weights: DecodeWeights, options: EngineOptions) -> EngineRunner:
    """A SmolLM2 engine whose config entry says `decode_weights`, whatever the bundled one says."""
    entry = find_model(SMOLLM2)
    assert entry is not None
    register_models([replace(entry, decode_weights=decode_weights)])
    try:
        return EngineRunner(options)
    finally:
        clear_registered_models()


@pytest.fixture(scope="module")
def runner() -> Iterator[EngineRunner]:
    r = EngineRunner(EngineOptions(cache_capacity_mb=256))
    yield r
    r.close()


async def collect_stream(engine: Engine, prompt_ids: list[int], params: SamplingParams) -> list[StreamDelta]:
    return [delta async for delta in engine.stream(prompt_ids, params)]


def assert_stream_matches(deltas: list[StreamDelta], full: Continuation) -> None:
    """Streamed deltas concatenate to the non-streamed result; only the last one finishes."""
    assert "".join(d.text for d in deltas) == full.text
    assert [t for d in deltas for t in d.token_ids] == full.token_ids
    assert deltas[-1].finish_reason is not None and all(d.finish_reason is None for d in deltas[:-1])
