"""Decode lanes: a long prompt in flight no longer widens the batch of short requests, and
lanes change no output (greedy tokens as one at a time)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from engine.lanes import Lanes, lane_key
from engine.protocol import ChatMessage, SamplingParams

from .conftest import EngineRunner

CONFIG = LlamaConfig(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, hidden_size=8)
GREEDY = SamplingParams(max_new_tokens=12, temperature=0, ignore_eos=True)
FILLER = "Every harbour keeps a ledger of the ships that came in, what they carried and when. "


def kv(length: int) -> torch.Tensor:
    return torch.zeros((2, 2, 1, length, 4))


def test_lane_bands_double_from_256_tokens() -> None:
    assert [lane_key(n) for n in (1, 256, 257, 512, 513, 1024, 1025, 8000)] == [0, 0, 1, 1, 2, 2, 3, 5]


def test_rows_of_other_bands_are_padded_apart() -> None:
    lanes = Lanes(CONFIG)
    lanes.add(["long"], kv(700))  # type: ignore[list-item]
    lanes.add(["a", "b"], kv(20))  # type: ignore[list-item]
    lanes.add(["c"], kv(30))  # type: ignore[list-item]
    short, long = lanes.live()
    assert short.running == ["a", "b", "c"] and short.batch.width == 30
    assert long.running == ["long"] and long.batch.width == 700
    assert lanes.sequences() == ["a", "b", "c", "long"] and len(lanes) == 4
    long.keep([])
    lanes.drop_empty()
    assert lanes.live() == [short]


def test_short_requests_decode_narrow_beside_a_long_prompt(runner: EngineRunner) -> None:
    engine = runner.engine
    long_ids = engine.apply_chat_template([ChatMessage("user", FILLER * 40)])  # ~700 tokens
    questions = ("Name a colour.", "Count to 3.")
    short_ids = [engine.apply_chat_template([ChatMessage("user", q)]) for q in questions]
    assert len(long_ids) > 600 and all(len(ids) < 64 for ids in short_ids)
    alone = [runner.run(engine.generate([ids], GREEDY))[0][0].token_ids for ids in short_ids]
    widths: list[tuple[int, int]] = []  # (rows, attention width) of every decode step
    worker = engine._require_worker()
    decode = worker.decode

    def record(ids: torch.Tensor, positions: torch.Tensor, cache: object, mask: torch.Tensor) -> torch.Tensor:
        widths.append(tuple(mask.shape))
        return decode(ids, positions, cache, mask)  # type: ignore[arg-type]

    worker.decode = record
    try:
        together = runner.run(engine.generate([long_ids, *short_ids], GREEDY))
    finally:
        worker.decode = decode
    assert [g[0].token_ids for g in together[1:]] == alone
    narrow = [w for w in widths if w[1] < 256]
    assert narrow and max(rows for rows, _ in narrow) == 2  # both short requests, without the long one
    assert all(rows == 1 for rows, width in widths if width > 600)  # the long one decodes alone
