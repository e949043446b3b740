"""What a searching request needs beyond an engine: PRMs, outcome verifiers, limits, traces.

PRMs load lazily on first use (off the event loop) and stay loaded; which PRM guides which
policy, and which verifier checks it, is a fixed table of the bundled models.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from engine.models import resolve_model_dir
from rewards.countdown.problems import parse_prompt
from rewards.countdown.verifier import verify_reply
from rewards.prm import load_prm
from search.config import SearchLimits
from search.context import PrmScorer, Verifier
from server.errors import invalid_request
from server.settings import ServerSettings
from server.trace_store import TraceStore

PRM_FOR_POLICY = {"countdown": "countdown-prm"}


def countdown_verifier(user_message: str) -> Verifier | None:
    """Checks a reply against the puzzle in the user's message; None if it states no puzzle."""
    try:
        problem = parse_prompt(user_message)
    except ValueError:
        return None
    return lambda reply: verify_reply(problem, reply)


VERIFIER_FOR_POLICY = {"countdown": countdown_verifier}


@dataclass
class SearchServices:
    limits: SearchLimits
    traces: TraceStore
    served_prms: tuple[str, ...]
    _prms: dict[str, PrmScorer] = field(default_factory=dict)
    _loading: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def from_settings(cls, settings: ServerSettings, served_prms: tuple[str, ...]) -> SearchServices:
        limits = SearchLimits(
            budget_tokens=settings.search_max_budget_tokens, max_seconds=settings.search_max_seconds
        )
        return cls(limits, TraceStore(settings.trace_db), served_prms)

    async def prm_for(self, model_id: str) -> PrmScorer:
        """The PRM that guides `model_id`, or a 400 naming `search.prm` if none is served."""
        prm_id = PRM_FOR_POLICY.get(model_id)
        if prm_id is None or prm_id not in self.served_prms:
            raise invalid_request(
                f"No process reward model is served for '{model_id}'; set search.prm to false.",
                "search.prm",
                "prm_unavailable",
            )
        async with self._loading:
            if prm_id not in self._prms:
                prm = await asyncio.to_thread(load_prm, resolve_model_dir(prm_id))
                self._prms[prm_id] = PrmScorer(prm)
        return self._prms[prm_id]

    def verifier_for(self, model_id: str, user_message: str) -> Verifier:
        factory = VERIFIER_FOR_POLICY.get(model_id)
        verifier = factory(user_message) if factory else None
        if verifier is None:
            raise invalid_request(
                f"No outcome verifier applies to this request for '{model_id}'; set search.verifier "
                "to false.",
                "search.verifier",
                "verifier_unavailable",
            )
        return verifier
