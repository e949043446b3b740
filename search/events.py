"""Live search events: the one observer hook through which a search reports what it does while
it runs, so that a server can stream it and a client can draw the tree as it grows.

The tree's primitives (`search.expand`, `search.replies`, `search.rollout`) and the strategies'
few decisions (prune, commit, choose) call `SearchEvents`; no strategy streams anything itself.
Without a sink every call returns at once. Node ids number the nodes 1..N in the order they
joined the tree, the root being 0: the same numbers as a trace's `seq`, so a streamed tree and
the recorded one name the same nodes.

Kinds:
- `expand`: a node joined the tree (`parent`, `text`, `num_tokens`, `is_terminal`, `is_duplicate`).
- `score`: a step was scored (`score`: the step's, `path_score`: its path's, aggregated).
- `prune`: a node was dropped from the search's frontier (`reason`); a beam may revive it later.
- `rollout`: a whole reply finished below `parent` (`node`: its last step) and its `value`
  was backed up to the root (MCTS and lookahead beam).
- `commit`: the path to `node` is settled: whatever the search does next, the answer has it.
- `chosen`: the search answers with the path to `node`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from search.tree import Node

EventKind = Literal["expand", "score", "prune", "rollout", "commit", "chosen"]
ROOT_ID = 0


@dataclass(frozen=True)
class SearchEvent:
    """One thing the search did to one node; unset fields do not apply to the kind."""

    kind: EventKind
    node: int
    parent: int | None = None
    text: str | None = None
    num_tokens: int | None = None
    is_terminal: bool | None = None
    is_duplicate: bool | None = None
    score: float | None = None
    path_score: float | None = None
    value: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


EventSink = Callable[[SearchEvent], None]


class SearchEvents:
    """Numbers one search's nodes and reports its events to `sink` (None: nobody listens)."""

    def __init__(self, sink: EventSink | None = None) -> None:
        self.sink = sink
        self._ids: dict[int, int] = {}  # id(node) -> 1..N; tree nodes live as long as the search

    def fresh(self) -> SearchEvents:
        """The same sink with node numbering restarted: one per search."""
        return SearchEvents(self.sink)

    def node_id(self, node: Node) -> int:
        if node.parent is None:
            return ROOT_ID
        return self._ids.setdefault(id(node), len(self._ids) + 1)

    def added(self, node: Node) -> None:
        """`node` joined the tree; called once per node, in the order nodes join."""
        if self.sink is None:
            return
        self.sink(
            SearchEvent(
                "expand",
                self.node_id(node),
                parent=self.node_id(node.parent) if node.parent is not None else None,
                text=node.text,
                num_tokens=len(node.token_ids),
                is_terminal=node.is_terminal,
                is_duplicate=node.is_duplicate,
            )
        )

    def scored(self, node: Node, path_score: float) -> None:
        if self.sink is not None and node.prm_score is not None:
            score = round(node.prm_score, 4)
            self.sink(SearchEvent("score", self.node_id(node), score=score, path_score=round(path_score, 4)))

    def pruned(self, nodes: Iterable[Node], reason: str) -> None:
        if self.sink is not None:
            for node in nodes:
                self.sink(SearchEvent("prune", self.node_id(node), reason=reason))

    def rolled_out(self, end: Node, start: Node, value: float) -> None:
        """A reply ending at `end` was sampled below `start` and `value` backed up through it."""
        if self.sink is not None:
            parent = self.node_id(start)
            self.sink(SearchEvent("rollout", self.node_id(end), parent=parent, value=round(value, 4)))

    def committed(self, node: Node) -> None:
        if self.sink is not None:
            self.sink(SearchEvent("commit", self.node_id(node)))

    def chosen(self, node: Node) -> None:
        if self.sink is not None:
            self.sink(SearchEvent("chosen", self.node_id(node)))
