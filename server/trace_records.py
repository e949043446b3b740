"""What one recorded search is, as training data: the prompt, the settings, every finished reply
with its step scores and verifier outcome, and the chosen answer.

These frozen dataclasses are the contract between the server (which records) and the trainer
(which reads `TraceStore.iter_records`); `build_record` turns a finished `SearchResult` into one.
Everything here is pure: no SQLite, no FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rewards.aggregation import aggregate

if TYPE_CHECKING:  # the search package pulls in the engine (torch); a reader of traces needs none
    from search.config import SearchConfig
    from search.result import SearchResult
    from search.tree import Node

Outcome = Callable[[str], bool]
"""The task's verifier for one reply text (True: the answer is right)."""


@dataclass(frozen=True)
class ReplyRecord:
    """One finished reply of the search tree."""

    text: str
    steps: list[str]
    step_scores: list[float]
    score: float | None  # the step scores aggregated as the search did; None with no scored step
    is_verified: bool | None  # task verifier's outcome; None where no verifier applies


@dataclass(frozen=True)
class TraceRecord:
    """One search. `id` and `created` are assigned by `TraceStore.save` (pass "" and 0.0)."""

    id: str
    created: float
    model: str
    version: str  # engine.card.version of the engine that ran the search ("" if unversioned)
    strategy: str
    owner: str  # Caller.owner of the request ("" anonymous)
    messages: list[dict[str, str]] = field(default_factory=list)  # as sent, after role mapping
    settings: dict[str, Any] = field(default_factory=dict)  # dataclasses.asdict(SearchConfig)
    replies: list[ReplyRecord] = field(default_factory=list)  # terminal replies, unique by text
    answer: str = ""  # the chosen reply text
    is_verified: bool | None = None  # verifier outcome of the answer
    tree: dict[str, Any] = field(default_factory=dict)  # SearchResult.trace(); {} in summaries

    def to_json(self, with_tree: bool = True) -> dict[str, Any]:
        """The API's `search.trace` object (a summary without `tree` when `with_tree` is False)."""
        body = {"id": self.id, "object": "search.trace", **asdict(self)}
        if not with_tree:
            del body["tree"]
        return body


def build_record(
    result: SearchResult,
    config: SearchConfig,
    *,
    model: str,
    version: str,
    owner: str,
    messages: Sequence[tuple[str, str]],
    outcome: Outcome | None,
) -> TraceRecord:
    """The record of a finished search; `outcome` checks each reply where the task has a
    verifier (None: `is_verified` stays None), whether or not the search itself used one."""
    return TraceRecord(
        id="",
        created=0.0,
        model=model,
        version=version,
        strategy=result.strategy or config.strategy,
        owner=owner,
        messages=[{"role": role, "content": content} for role, content in messages],
        settings=asdict(config),
        replies=finished_replies(result, config, outcome),
        answer=result.text,
        is_verified=_check(outcome, result.text),
        tree=result.trace(),
    )


def finished_replies(
    result: SearchResult, config: SearchConfig, outcome: Outcome | None
) -> list[ReplyRecord]:
    """Every terminal reply not cut off by the token cap, the first of each text kept."""
    replies: dict[str, ReplyRecord] = {}
    for node in result.tree.root.walk():
        if not node.is_terminal or node.is_cut:
            continue
        text = node.reply_text()
        if text and text not in replies:
            replies[text] = _reply(node, text, config, outcome)
    return list(replies.values())


def _reply(node: Node, text: str, config: SearchConfig, outcome: Outcome | None) -> ReplyRecord:
    scores = node.path_scores()
    return ReplyRecord(
        text=text,
        steps=node.step_texts(),
        step_scores=scores,
        score=aggregate(scores, config.aggregate) if scores else None,
        is_verified=_check(outcome, text),
    )


def _check(outcome: Outcome | None, text: str) -> bool | None:
    return None if outcome is None else bool(outcome(text))


def record_from_columns(row: Sequence[Any], extra: dict[str, Any], tree: dict[str, Any]) -> TraceRecord:
    """A record from the store's columns (id, created, model, version, strategy, owner), its
    `extra` JSON (messages, settings, replies, answer, is_verified) and its tree. Rows from
    before the schema had `extra` give `{}`: empty messages, settings and replies."""
    trace_id, created, model, version, strategy, owner = row
    return TraceRecord(
        id=trace_id,
        created=created,
        model=model,
        version=version,
        strategy=strategy,
        owner=owner,
        messages=list(extra.get("messages", [])),
        settings=dict(extra.get("settings", {})),
        replies=[ReplyRecord(**reply) for reply in extra.get("replies", [])],
        answer=str(extra.get("answer", "")),
        is_verified=extra.get("is_verified"),
        tree=tree,
    )


def extra_of(record: TraceRecord) -> dict[str, Any]:
    """What the store keeps in its `extra` JSON column: the record less its columns and tree."""
    return {
        "messages": record.messages,
        "settings": record.settings,
        "replies": [asdict(reply) for reply in record.replies],
        "answer": record.answer,
        "is_verified": record.is_verified,
    }
