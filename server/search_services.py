"""What a searching request needs beyond an engine: PRMs, outcome verifiers, limits, traces.

PRMs load lazily on first use (off the event loop), from the version the store serves, and stay
loaded until shutdown or until a hot swap replaces them (`swap_prm`); which PRM guides which
policy is the model table's (`engine.models.paired_prm`), and a reply is verified by the search's
task (`rewards.tasks`), where the task has a verifier. On
the vLLM engine the PRM runs on vLLM's pooling runner too, so it shares the accelerator the
policy is on; the transformers scorer is the fallback where vLLM cannot load it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from engine.loader_thread import run_on_own_thread
from engine.models import model_threads, paired_prm, resolve_model_dir
from engine.options import EngineOptions
from rewards.prm import ProcessRewardModel, detect_style, load_prm
from rewards.tasks import Task
from search.config import SearchLimits
from search.context import PrmScorer, Verifier
from server.errors import invalid_request
from server.model_versions import ModelVersions
from server.settings import ServerSettings
from server.trace_recording import TraceRecorder, TraceRecording
from server.trace_store import TraceStore

logger = logging.getLogger("ponder.search")

RETIRED_PRM_GRACE_S = 30.0
"""Beyond search_max_seconds, how long a replaced PRM that owns a process stays open: a search
that took it just before the swap finishes its last scoring call within this."""


def prm_id_for(model_id: str, prm_model: str | None) -> str | None:
    """The PRM a search on `model_id` uses: the one it names, else the policy's own."""
    return prm_model or paired_prm(model_id)


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


def task_verifier(task: Task, user_message: str) -> Verifier | None:
    """Checks a reply against the problem in the user's message; None where the task has no
    verifier or the message states no problem it can check."""
    if task.verify(user_message, "") is None:
        return None
    return lambda reply: bool(task.verify(user_message, reply))


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

    def guiding_prm(self, model_id: str, prm_model: str | None = None) -> str | None:
        """The served PRM a search on `model_id` would use: the one named, else the policy's
        paired PRM if this server serves it; None when there is none."""
        prm_id = prm_id_for(model_id, prm_model)
        return prm_id if prm_id in self.served_prms else None

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
        return await self.scorer(prm_id)

    async def scorer(self, prm_id: str) -> PrmScorer:
        """The scorer of a served PRM (`prm_id` in `served_prms`), loaded on first use."""
        async with self._loading:
            if prm_id not in self._prms:
                folder = self._served_folder(prm_id)
                prm = await self._load_prm(prm_id, folder)
                self._prms[prm_id] = self._scorer(prm_id, prm)
        return self._prms[prm_id]

    async def _load_prm(self, prm_id: str, folder: Path) -> ProcessRewardModel:
        """On a thread that ends with the load: no idle OpenMP team outlives it (engine/loader_thread.py)."""
        return await run_on_own_thread(
            f"ponder-load-{prm_id}", partial(load_served_prm, folder, self.backend, self.engine_options)
        )

    def _scorer(self, prm_id: str, prm: ProcessRewardModel) -> PrmScorer:
        """On the embedded engine a PRM runs on its model's threads (`model_threads`), beside
        the policy's passes where the cores allow; a vLLM PRM computes in its own process."""
        if self.backend != "embedded":
            return PrmScorer(prm)
        return PrmScorer(prm, threads=model_threads(prm_id, self.engine_options.num_threads))

    def _served_folder(self, prm_id: str) -> Path:
        folder = None if self.versions is None else self.versions.folder_for(prm_id)
        return folder or resolve_model_dir(prm_id)

    async def swap_prm(self, prm_id: str, folder: Path) -> None:
        """Load the PRM in `folder` and let new searches use it; a search already running keeps
        the scorer it took. Raises (and changes nothing) if the new PRM fails to load."""
        prm = await self._load_prm(prm_id, folder)
        async with self._loading:  # after a lazy load of the old version, not before it
            old = self._prms.get(prm_id)
            self._prms[prm_id] = self._scorer(prm_id, prm)
        if old is not None:
            # A vLLM PRM owns a process, an embedded one may own a thread; the searches holding
            # it end within search_max_seconds.
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

    def verifier_for(self, task: Task, user_message: str) -> Verifier:
        """The verifier a search with `search.verifier` uses; a 400 naming it where none applies."""
        verifier = task_verifier(task, user_message)
        if verifier is None:
            raise invalid_request(
                f"The task '{task.name}' has no outcome verifier for this request; set "
                "search.verifier to false.",
                "search.verifier",
                "verifier_unavailable",
            )
        return verifier


async def _close_scorer(scorer: PrmScorer) -> None:
    await asyncio.to_thread(scorer.close)


async def _close_later(scorer: PrmScorer, delay_s: float) -> None:
    """Close a replaced PRM once the searches that may hold it are past their time limit."""
    try:
        await asyncio.sleep(delay_s)
    finally:
        await _close_scorer(scorer)
