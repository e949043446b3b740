"""A streamed search, live: the events a running search reports (`search.events`) become
deltas while it works, so a client sees it think and can draw its tree.

Each event is one chunk's `delta.search_event`. After each burst of events the best path so far
is written as `delta.reasoning_content`, one line a step with its score: new steps when the
best path grew, and a `[back to step k]` line first when the search switched to a branch that
left the path written so far at step k. So the streamed reasoning is a log of the best path as
it moved, and ends with the path of the answer; the non-streamed `reasoning_content` holds only
that last path. When the search reports nothing for `HEARTBEAT_S`, a `progress` event says how
far it got, so a client never waits long for a chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from search.context import SearchContext, SearchStats
from search.events import ROOT_ID, SearchEvent
from server.responses import DeltaMessage, SearchEventOut

HEARTBEAT_S = 0.3
"""Longest quiet spell before a `progress` chunk: under the 0.5 s gap a client is promised,
with room for a busy event loop."""


def step_line(text: str, score: float | None) -> str:
    """One reasoning line: the step and, once scored, its score."""
    return f"{text.rstrip()}" + (f"  [prm {score:.2f}]" if score is not None else "") + "\n"


@dataclass
class MirrorNode:
    """What the events said about one node."""

    parent: int
    text: str
    is_terminal: bool
    is_duplicate: bool
    score: float | None = None
    path_score: float | None = None


class ReasoningView:
    """The tree as the events drew it, and the reasoning text of its best path.

    The best path runs through the last `commit` (settled steps) to the best node of the scored
    frontier below it (scored nodes without a scored child), ranked as `search.result.best_node`
    ranks: finished replies first, then by path score, then deeper. Before anything is scored it
    is the settled path; after `chosen`, the answer's.
    """

    def __init__(self) -> None:
        self.nodes: dict[int, MirrorNode] = {}
        self.settled = ROOT_ID
        self.chosen: int | None = None
        self.shown: list[int] = []  # the path written so far (node ids, the root left out)

    def apply(self, event: SearchEvent) -> None:
        node = self.nodes.get(event.node)
        if event.kind == "expand" and event.parent is not None:
            self.nodes[event.node] = MirrorNode(
                event.parent, event.text or "", bool(event.is_terminal), bool(event.is_duplicate)
            )
        elif event.kind == "score" and node is not None:
            node.score, node.path_score = event.score, event.path_score
        elif event.kind == "prune" and event.reason == "duplicate" and node is not None:
            node.is_duplicate = True
        elif event.kind == "commit":
            self.settled = event.node
        elif event.kind == "chosen":
            self.chosen = event.node

    def path(self, node_id: int) -> list[int]:
        """Node ids from the root's child down to `node_id`."""
        ids: list[int] = []
        while node_id != ROOT_ID and node_id in self.nodes:
            ids.append(node_id)
            node_id = self.nodes[node_id].parent
        return ids[::-1]

    def best(self) -> int:
        if self.chosen is not None:
            return self.chosen
        scored = {i: n for i, n in self.nodes.items() if n.path_score is not None and not n.is_duplicate}
        inner = {node.parent for node in scored.values()}
        candidates = [
            (node.is_terminal, node.path_score, len(path), node_id)
            for node_id, node in scored.items()
            if node_id not in inner  # the scored frontier: a path ends where its scores do
            for path in [self.path(node_id)]
            if self.settled == ROOT_ID or self.settled in path
        ]
        return max(candidates)[3] if candidates else self.settled

    def reasoning(self) -> str:
        """Text to append for the best path now ("" when it shows nothing new). A best node that
        is an ancestor of the written path changes nothing until the answer is chosen."""
        path = self.best_path()
        keep = 0
        while keep < min(len(path), len(self.shown)) and path[keep] == self.shown[keep]:
            keep += 1
        if keep == len(path) and (self.chosen is None or keep == len(self.shown)):
            return ""
        head = "" if keep == len(self.shown) else _back_line(self._num_steps(path[:keep]))
        self.shown = path
        return head + "".join(self._line(node_id) for node_id in path[keep:])

    def best_path(self) -> list[int]:
        return self.path(self.best())

    def _num_steps(self, ids: list[int]) -> int:
        return sum(1 for node_id in ids if self.nodes[node_id].text.strip())

    def _line(self, node_id: int) -> str:
        node = self.nodes[node_id]
        return step_line(node.text, node.score) if node.text.strip() else ""


def _back_line(num_steps: int) -> str:
    return f"[back to step {num_steps}]\n" if num_steps else "[back to the start]\n"


def progress_event(stats: SearchStats, began: float) -> SearchEventOut:
    return SearchEventOut(
        kind="progress",
        tokens_generated=stats.num_tokens_generated,
        nodes_expanded=stats.num_nodes_expanded,
        elapsed_s=round(time.monotonic() - began, 3),
    )


async def live_deltas(
    events: asyncio.Queue[SearchEvent | None], ctx: SearchContext
) -> AsyncGenerator[DeltaMessage, None]:
    """Deltas for the events of `ctx`'s search until its end (`None` on `events`): a `progress`
    event at once and after every quiet `HEARTBEAT_S`, each event, and the best path's new
    reasoning after each burst."""
    view, began = ReasoningView(), time.monotonic()
    yield DeltaMessage(search_event=progress_event(ctx.stats, began))
    while True:
        try:
            burst = [await asyncio.wait_for(events.get(), HEARTBEAT_S)]
        except TimeoutError:
            yield DeltaMessage(search_event=progress_event(ctx.stats, began))  # the search's own stats
            continue
        while not events.empty():
            burst.append(events.get_nowait())
        for event in burst:
            if event is not None:
                view.apply(event)
                yield DeltaMessage(search_event=SearchEventOut.model_validate(event.to_dict()))
        text = view.reasoning()
        if text:
            yield DeltaMessage(reasoning_content=text)
        if None in burst:
            return
