"""Server configuration, read from `PONDER_*` environment variables and overridden by CLI flags.

Every limit the server enforces on a request lives here, so an operator can see (and the tests
can set) the whole admission policy in one place.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.options import EngineOptions
from engine.registry import ENGINE_BACKENDS


def default_engine() -> str:
    """vLLM where a CUDA GPU is present (its strength), the embedded engine on the CPU.

    A pure function of the device so the choice is testable; `--engine` / PONDER_ENGINE override it.
    """
    import torch

    return "vllm" if torch.cuda.is_available() else "embedded"


class ServerSettings(BaseSettings):
    """What one `python -m server` process serves and how much it accepts per request."""

    model_config = SettingsConfigDict(env_prefix="PONDER_", extra="ignore")

    host: str = Field("127.0.0.1", description="interface to bind; 127.0.0.1 keeps the server local")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    api_key: SecretStr | None = Field(
        None, description="when set, every /v1 route needs 'Authorization: Bearer <key>'"
    )
    admin_key: SecretStr | None = Field(
        None, description="when set, opens /v1/admin/* (reload, rollback) and every caller's traces"
    )
    engine: str = Field(
        default_factory=default_engine,
        description=f"engine backend: {sorted(ENGINE_BACKENDS)}; default vllm with CUDA, else embedded",
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated bundled model ids to serve; unset: every bundled model whose "
        "weights exist, or none when --model/--prm/--config name models of your own",
    )
    model: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="PATH[=NAME], repeatable: serve your own model, an HF folder (config.json, "
        "*.safetensors, tokenizer) or a .gguf file; NAME defaults to the folder name or file stem",
        json_schema_extra={"repeatable": True},
    )
    prm: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="PATH[=NAME], repeatable: serve your own process reward model (style detected: "
        "qwen2.5-math-prm, math-shepherd, token classification with prm.json, claim checker); "
        "with exactly one --prm it guides every --model's searches",
        json_schema_extra={"repeatable": True},
    )
    config: str | None = Field(
        None,
        description="a TOML (or .yaml) file of [[models]] with per-model settings: name, path, kind "
        "(generate|reward), engine, max_context, chat_template, temperature, top_p, top_k, prm, "
        "task, aggregate, threads (see models/bundled.toml)",
    )
    cache_capacity_mb: int = Field(512, ge=1, description="prefix-cache size per model (MiB)")
    max_batch_size: int = Field(128, ge=1, description="sequences decoded together per forward pass")
    num_threads: int | None = Field(
        None, ge=1, description="torch threads per engine and PRM; unset: each model's `threads` or all cores"
    )
    vllm_block_size: int = Field(
        16, ge=1, description="vLLM KV block (tokens); prefixes reuse whole blocks: keep it near a step"
    )
    vllm_kv_cache_gib: float = Field(1.0, gt=0, description="vLLM KV cache per engine (GiB)")
    vllm_swap: Literal["in-place", "beside"] = Field(
        "in-place",
        description="how a hot swap loads a new version on vLLM: in-place (collective_rpc reload "
        "once the old version's requests finished; one engine's memory) or beside (a second engine)",
    )
    max_n: int = Field(16, ge=1, description="largest `n` (choices per request) accepted")
    max_tokens: int = Field(2048, ge=1, description="largest max_tokens accepted, and the default's cap")
    max_concurrent_requests: int = Field(64, ge=1, description="requests generating at once; beyond: 429")
    max_request_bytes: int = Field(1_000_000, ge=1, description="largest request body; beyond: 413")
    request_timeout_s: float = Field(600.0, gt=0, description="wall-clock limit on one generation")
    queue_timeout_s: float = Field(
        30.0, gt=0, description="longest wait from admission until the engine begins a request; then 503"
    )
    shutdown_timeout: float = Field(
        30.0, gt=0, description="seconds in-flight requests may finish in after SIGTERM; then streams end"
    )
    log_level: str = Field("info", description="uvicorn and ponder log level")
    share_prefix_cache_across_keys: bool = Field(
        False, description="let the API and admin keys reuse each other's cached prefixes (reveals them)"
    )
    trace_db: str = Field(".cache/traces.sqlite3", description="SQLite file that keeps search traces")
    record_traces: Literal["off", "opt-in", "all"] = Field(
        "opt-in",
        description="which searches are recorded: off (search.trace is a 400), opt-in (those with "
        "search.trace: true) or all",
    )
    trace_retention_days: float = Field(30.0, gt=0, description="traces older than this are deleted")
    trace_max_mb: int = Field(
        1024, ge=1, description="stored traces beyond this many MiB are deleted, oldest first"
    )
    search_max_budget_tokens: int = Field(8192, ge=1, description="largest search.budget_tokens accepted")
    search_max_seconds: float = Field(120.0, gt=0, description="largest search.max_seconds accepted")
    model_store: str = Field(
        ".cache/versions", description="version store the learner publishes into; served models hot-swap"
    )
    watch_interval_s: float = Field(
        2.0, ge=0, description="seconds between checks of the store for a new version; 0 disables"
    )

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINE_BACKENDS:
            raise ValueError(f"unknown engine {value!r}; valid engines: {sorted(ENGINE_BACKENDS)}")
        return value

    @field_validator("models", "model", "prm", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        """Accept `a,b` from the environment and the CLI as well as a real list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def names_own_models(self) -> bool:
        """Whether the operator named models of their own (then bundled ones only if --models)."""
        return bool(self.model or self.prm or self.config)

    def engine_options(self) -> EngineOptions:
        return EngineOptions(
            cache_capacity_mb=self.cache_capacity_mb,
            max_batch_size=self.max_batch_size,
            num_threads=self.num_threads,
            vllm_block_size=self.vllm_block_size,
            vllm_kv_cache_gib=self.vllm_kv_cache_gib,
            vllm_swap=self.vllm_swap,
        )

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def admin_key_value(self) -> str | None:
        return self.admin_key.get_secret_value() if self.admin_key is not None else None
