"""The search tree: one node per reasoning step, so siblings share their parent's KV prefix.

A node's prefix is the prompt followed by the token ids of every step on its path, exactly as
the engine generated them (never re-tokenized text), which is what makes prefix reuse exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.protocol import TokenLogprob

LINE_END = "\n"
"""The step separator of a tree built without a task's (tests, hand-made trees)."""
_NODE_SEQUENCE = itertools.count(1)
"""Process-wide order in which nodes join a tree; a trace renumbers it 1..N per tree (replay)."""


@dataclass(eq=False)
class Node:
    """One step. The root has no tokens; `prm_score` is the PRM's score of this step given its path."""

    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprob: float = 0.0  # cumulative log-probability of this step's tokens under the policy
    prm_score: float | None = None
    prior: float = 1.0  # the policy's probability of this step among its siblings (MCTS prior)
    visits: int = 0
    value_sum: float = 0.0
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    is_terminal: bool = False
    is_verified: bool = False
    is_duplicate: bool = False  # same text as an earlier sibling: kept for token accounting only
    finish_reason: str | None = None
    seq: int = 0  # when the node joined its tree (`add_child`): the viewer replays in this order
    # Prefill spent expanding this node (one per expansion call, shared by its k samples): over
    # a tree these add up to the search's prompt_tokens_computed / _reused.
    num_prompt_tokens_computed: int = 0
    num_prompt_tokens_reused: int = 0
    token_logprobs: list[TokenLogprob] | None = None  # per token, when the search keeps them
    step_end: str = LINE_END  # the task's step separator, inherited from the root

    def add_child(self, child: Node) -> Node:
        child.parent = self
        child.seq = next(_NODE_SEQUENCE)
        child.step_end = self.step_end
        self.children.append(child)
        return child

    def distinct_children(self) -> list[Node]:
        """Children a strategy may choose among (duplicates of a sibling's step are left out)."""
        return [child for child in self.children if not child.is_duplicate]

    @property
    def is_cut(self) -> bool:
        """Ended by the token cap mid-step: a broken step, not an answer to vote for."""
        return self.finish_reason == "length"

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    @property
    def value(self) -> float:
        """Mean backed-up value; 0 for an unvisited node."""
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list[Node]:
        """The steps from the root's first child down to this node (the root is excluded)."""
        nodes: list[Node] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def prefix_ids(self, prompt_ids: list[int]) -> list[int]:
        """What the engine continues to expand this node: prompt + every step's token ids."""
        ids = list(prompt_ids)
        for node in self.path():
            ids.extend(node.token_ids)
        return ids

    def step_texts(self) -> list[str]:
        """Non-empty step texts of the path (an EOS-only final step has no text)."""
        return [n.text for n in self.path() if n.text.strip()]

    def path_scores(self) -> list[float]:
        """PRM scores of the scored, non-empty steps on the path."""
        return [n.prm_score for n in self.path() if n.prm_score is not None and n.text.strip()]

    def reply_text(self) -> str:
        """The path's steps joined by the task's step separator."""
        return self.step_end.join(self.step_texts())

    def path_logprobs(self) -> list[TokenLogprob] | None:
        """Every generated token's log-probability along the path; None unless all were kept."""
        steps = self.path()
        if any(step.token_logprobs is None for step in steps):
            return None
        return [item for step in steps for item in step.token_logprobs or ()]

    def walk(self) -> Iterator[Node]:
        """Every node of the subtree, this one first (iterative: deep trees must not recurse)."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready trace of the subtree (token ids left out: the text says the same)."""
        return {
            "text": self.text,
            "num_tokens": len(self.token_ids),
            "logprob": round(self.logprob, 4),
            "prm_score": None if self.prm_score is None else round(self.prm_score, 4),
            "prior": round(self.prior, 4),
            "visits": self.visits,
            "value": round(self.value, 4),
            "is_terminal": self.is_terminal,
            "is_verified": self.is_verified,
            "is_duplicate": self.is_duplicate,
            "finish_reason": self.finish_reason,
            "children": [child.to_dict() for child in self.children],
        }


@dataclass(eq=False)
class SearchTree:
    """The prompt and the root of every step generated for it; `step_end` joins a reply's steps."""

    prompt_ids: list[int]
    step_end: str = LINE_END
    root: Node = field(default_factory=Node)

    def __post_init__(self) -> None:
        self.root.step_end = self.step_end

    def num_tokens(self) -> int:
        """Tokens held by all nodes: equals the tokens generated, since every step is kept."""
        return sum(len(node.token_ids) for node in self.root.walk())

    def num_nodes(self) -> int:
        return sum(1 for _ in self.root.walk()) - 1

    def terminal_leaves(self) -> list[Node]:
        return [n for n in self.root.walk() if n.is_terminal]

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_prompt_tokens": len(self.prompt_ids),
            "num_nodes": self.num_nodes(),
            "num_tokens": self.num_tokens(),
            "root": self.root.to_dict(),
        }


def common_path(nodes: list[Node]) -> list[Node]:
    """The steps every node's path shares: safe to stream, whichever node wins."""
    paths = [n.path() for n in nodes]
    if not paths:
        return []
    shared: list[Node] = []
    for steps in zip(*paths, strict=False):
        if any(s is not steps[0] for s in steps):
            break
        shared.append(steps[0])
    return shared
