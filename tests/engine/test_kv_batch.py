"""Left-padded batches: rows go in and come out unchanged whatever else joins or leaves."""

import torch
from transformers import LlamaConfig

from engine.kv_batch import PaddedKVBatch

CONFIG = LlamaConfig(num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, hidden_size=8)


def row(length: int, value: float) -> torch.Tensor:
    return torch.full((2, 2, 1, length, 4), value) + torch.arange(length).view(1, 1, 1, -1, 1)


def test_rows_round_trip_through_add_and_keep():
    batch = PaddedKVBatch(CONFIG)
    a, b, c = row(3, 10.0), row(5, 20.0), row(2, 30.0)
    batch.add_rows([a, b])
    batch.add_rows([c])
    assert batch.lengths == [3, 5, 2] and batch.width == 5
    assert torch.equal(batch.row_kv(0), a) and torch.equal(batch.row_kv(2), c)
    batch.keep_rows([2, 0])  # the longest row leaves: columns are trimmed
    assert batch.width == 3
    assert torch.equal(batch.row_kv(0), c) and torch.equal(batch.row_kv(1), a)


def test_attention_mask_marks_valid_tokens_and_the_new_one():
    batch = PaddedKVBatch(CONFIG)
    batch.add_rows([row(1, 0.0), row(3, 0.0)])
    assert batch.attention_mask(extra=1).tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_growth_appends_in_place():
    batch = PaddedKVBatch(CONFIG)
    batch.add_rows([row(2, 1.0)])
    assert batch.cache is not None
    for layer in batch.cache.layers:
        layer.update(torch.full((1, 1, 1, 4), 7.0), torch.full((1, 1, 1, 4), 7.0))
    batch.grow()
    kv = batch.row_kv(0)
    assert kv.shape[3] == 3 and kv[0, 0, 0, 2, 0].item() == 7.0
