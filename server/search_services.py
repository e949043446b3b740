"""What a searching request needs beyond an engine: PRMs, outcome verifiers, limits, traces.

PRMs load lazily on first use (off the event loop), from the version the store serves, and stay
loaded until shutdown or until a hot swap replaces them (`swap_prm`); which PRM guides which
policy, and which verifier checks it, is a fixed table of the bundled models. On
the vLLM engine the PRM runs on vLLM's pooling runner too, so it shares the accelerator the
policy is on; the transformers scorer is the fallback where vLLM cannot load it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.models import COUNTDOWN_DEFAULT_PRM, resolve_model_dir
from engine.options import EngineOptions
from rewards.countdown.problems import parse_prompt
from rewards.countdown.verifier import verify_reply
from rewards.prm import ProcessRewardModel, detect_style, load_prm
from search.config import SearchLimits
from search.context import PrmScorer, Verifier
from server.errors import invalid_request
from server.model_versions import ModelVersions
from server.settings import ServerSettings
from server.trace_recording import TraceRecorder, TraceRecording
from server.trace_store import TraceStore

logger = logging.getLogger("ponder.search")

PRM_FOR_POLICY = {"countdown": COUNTDOWN_DEFAULT_PRM}
RETIRED_PRM_GRACE_S = 30.0
"""Beyond search_max_seconds, how long a replaced PRM that owns a process stays open: a search
that took it just before the swap finishes its last scoring call within this."""


def prm_id_for(model_id: str, prm_model: str | None) -> str | None:
    """The PRM a search on `model_id` uses: the one it names, else the policy's own."""
    return prm_model or PRM_FOR_POLICY.get(model_id)


def load_served_prm(folder: Path, backend: str, options: EngineOptions) -> ProcessRewardModel:
    """The PRM on the engine backend the policy runs on; transformers where vLLM cannot serve it
    (vLLM serves token classifiers only: a claim checker reads a causal LM's log-probabilities)."""
    if backend == "vllm" and detect_style(folder) == "token-classification":
        try:
            from engine.vllm_prm import VllmTokenClassificationPRM

            return VllmTokenClassificationPRM(folder, options)
        except Exception:  # vLLM missing or the architecture unsupported: still serve the PRM
            logger.warning("vLLM cannot serve the PRM in %s; using transformers", folder, exc_info=True)
    return load_prm(folder)


def countdown_verifier(user_message: str) -> Verifier | None:
    """Checks a reply against the puzzle in the user's message; None if it states no puzzle."""
    try:
        problem = parse_prompt(user_message)
    except ValueError:
        return None
    return lambda reply: verify_reply(problem, reply)


VERIFIER_FOR_POLICY = {"countdown": countdown_verifier}


def outcome_verifier(model_id: str, user_message: str) -> Verifier | None:
    """The task's verifier for this request, or None when the model has none or the message
    states no task it can check (traces record the outcome wherever there is one)."""
    factory = VERIFIER_FOR_POLICY.get(model_id)
    return factory(user_message) if factory else None


@dataclass
class SearchServices:
    limits: SearchLimits
    traces: TraceStore
    served_prms: tuple[str, ...]
    backend: str = "embedded"
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    recording: TraceRecording = field(default_factory=TraceRecording)
    versions: ModelVersions | None = None
    recorder: TraceRecorder = field(init=False)
    _prms: dict[str, PrmScorer] = field(default_factory=dict)
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _retiring: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.recorder = TraceRecorder(self.traces, self.recording)

    @classmethod
    def from_settings(
        cls, settings: ServerSettings, served_prms: tuple[str, ...], versions: ModelVersions | None = None
    ) -> SearchServices:
        limits = SearchLimits(
            budget_tokens=settings.search_max_budget_tokens, max_seconds=settings.search_max_seconds
        )
        traces = TraceStore(settings.trace_db)
        recording = TraceRecording.from_settings(settings)
        options = settings.engine_options()
        return cls(limits, traces, served_prms, settings.engine, options, recording, versions)

    async def prm_for(self, model_id: str, prm_model: str | None = None) -> PrmScorer:
        """The PRM named by `prm_model`, else the one that guides `model_id`; a 400 naming
        `search.prm` if it is not served."""
        prm_id = prm_id_for(model_id, prm_model)
        if prm_model is not None and prm_model not in self.served_prms:
            served = ", ".join(self.served_prms) or "none"
            raise invalid_request(
                f"The PRM '{prm_model}' is not served (served PRMs: {served}).",
                "search.prm",
                "model_not_found",
            )
        if prm_id is None or prm_id not in self.served_prms:
            raise invalid_request(
                f"No process reward model is served for '{model_id}'; set search.prm to false.",
                "search.prm",
                "prm_unavailable",
            )
        async with self._loading:
            if prm_id not in self._prms:
                folder = self._served_folder(prm_id)
                prm = await asyncio.to_thread(load_served_prm, folder, self.backend, self.engine_options)
                self._prms[prm_id] = PrmScorer(prm)
        return self._prms[prm_id]

    def _served_folder(self, prm_id: str) -> Path:
        folder = None if self.versions is None else self.versions.folder_for(prm_id)
        return folder or resolve_model_dir(prm_id)

    async def swap_prm(self, prm_id: str, folder: Path) -> None:
        """Load the PRM in `folder` and let new searches use it; a search already running keeps
        the scorer it took. Raises (and changes nothing) if the new PRM fails to load."""
        prm = await asyncio.to_thread(load_served_prm, folder, self.backend, self.engine_options)
        async with self._loading:  # after a lazy load of the old version, not before it
            old = self._prms.get(prm_id)
            self._prms[prm_id] = PrmScorer(prm)
        if old is not None and getattr(old.prm, "close", None) is not None:
            # A vLLM PRM owns a process; the searches holding it end within search_max_seconds.
            task = asyncio.create_task(_close_later(old, self.limits.max_seconds + RETIRED_PRM_GRACE_S))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Release loaded PRMs (a vLLM one owns an engine-core process that must be stopped),
        then checkpoint and close the trace store, so no trace is left only in its WAL."""
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        prms, self._prms = self._prms, {}
        for scorer in prms.values():
            await _close_scorer(scorer)
        await self.recorder.close()

    def verifier_for(self, model_id: str, user_message: str) -> Verifier:
        """The verifier a search with `search.verifier` uses; a 400 naming it where none applies."""
        verifier = outcome_verifier(model_id, user_message)
        if verifier is None:
            raise invalid_request(
                f"No outcome verifier applies to this request for '{model_id}'; set search.verifier "
                "to false.",
                "search.verifier",
                "verifier_unavailable",
            )
        return verifier


async def _close_scorer(scorer: PrmScorer) -> None:
    close = getattr(scorer.prm, "close", None)
    if close is not None:
        await asyncio.to_thread(close)


async def _close_later(scorer: PrmScorer, delay_s: float) -> None:
    """Close a replaced PRM once the searches that may hold it are past their time limit."""
    try:
        await asyncio.sleep(delay_s)
    finally:
        await _close_scorer(scorer)
