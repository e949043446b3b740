"""What the decode-step tests share: bundled models loaded plainly, and left-padded batches."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from engine.growable_cache import cache_kv, growable_cache
from engine.kv_batch import PaddedKVBatch
from engine.models import resolve_model_dir

PROMPT_LENGTHS = (5, 17, 9)  # rows of different lengths: the batch is left-padded


def bundled(model_id: str) -> PreTrainedModel:
    return AutoModelForCausalLM.from_pretrained(resolve_model_dir(model_id), dtype=torch.float32).eval()


def padded_batch(model: PreTrainedModel, prompts: list[list[int]]) -> PaddedKVBatch:
    """The prompts prefilled one by one (as the worker does) and laid out as one padded batch."""
    rows = []
    for prompt in prompts:
        cache = growable_cache(model.config)
        model(input_ids=torch.tensor([prompt]), past_key_values=cache, use_cache=True)
        rows.append(cache_kv(cache))
    batch = PaddedKVBatch(model.config)
    batch.add_rows(rows)
    return batch
