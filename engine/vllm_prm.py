"""A token-classification PRM scored by vLLM's pooling runner instead of transformers.

vLLM maps `*ForTokenClassification` architectures (the bundled `LlamaForTokenClassification`
PRM included) onto its pooling runner; `encode(..., pooling_task="token_classify")` returns the
softmaxed label probabilities of every token, `(T, num_labels)`. The input encoding and the
positions read are `rewards.prm_encoding`'s, so scores match `rewards.prm.TokenClassificationPRM`
(the transformers scorer, which stays the default and the fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer
from vllm import LLM  # type: ignore[import-not-found]
from vllm.inputs import TokensPrompt  # type: ignore[import-not-found]

from engine.options import EngineOptions
from engine.vllm import GIB, device_block_size
from engine.weights import require_safetensors
from rewards.prm_encoding import StepMarkers, encode_steps

TOKEN_CLASSIFY = "token_classify"


class VllmTokenClassificationPRM:
    """`rewards.prm.ProcessRewardModel` on vLLM; p(positive label) at each step-end token."""

    def __init__(self, folder: Path | str, options: EngineOptions | None = None) -> None:
        folder = Path(folder)
        require_safetensors(folder)
        options = options or EngineOptions()
        self.markers = StepMarkers.load(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        on_cpu = not torch.cuda.is_available()
        self.llm: Any = LLM(
            model=str(folder),
            runner="pooling",
            load_format="safetensors",  # never a pickle, whatever else the folder holds
            dtype="float32" if on_cpu else "auto",
            block_size=device_block_size(options.vllm_block_size),
            kv_cache_memory_bytes=int(options.vllm_kv_cache_gib * GIB),
            max_model_len=int(AutoConfig.from_pretrained(folder).max_position_embeddings),
        )

    def score_steps(self, prompt: str, steps: list[str]) -> list[float]:
        return self.score_batch([(prompt, steps)])[0]

    def score_batch(self, items: Sequence[tuple[str, list[str]]]) -> list[list[float]]:
        encoded = [encode_steps(self.tokenizer, self.markers, prompt, steps) for prompt, steps in items]
        prompts = [TokensPrompt(prompt_token_ids=e.ids) for e in encoded]
        outputs = self.llm.encode(prompts, pooling_task=TOKEN_CLASSIFY, use_tqdm=False)
        label = self.markers.positive_label
        return [
            [float(out.outputs.data[i, label]) for i in e.step_ends]  # data: (T, num_labels)
            for e, out in zip(encoded, outputs, strict=True)
        ]

    def close(self) -> None:
        """Stop vLLM's engine-core process (it would otherwise live until interpreter exit)."""
        self.llm.llm_engine.engine_core.shutdown()
