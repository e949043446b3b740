"""What a search returns: the chosen path as a reply, its per-step scores, stats and the tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.protocol import TokenLogprob
from search.config import SearchConfig
from search.context import SearchContext, SearchStats
from search.expand import path_value
from search.trace_marks import annotated_tree
from search.tree import Node, SearchTree


@dataclass
class SearchResult:
    """`finish_reason` is "stop" when the chosen path ended on its own (EOS), "length" when the
    budget or the deadline cut it off. `tree` is kept for traces (`config.trace`)."""

    text: str
    steps: list[str]
    step_scores: list[float]
    score: float
    finish_reason: str
    is_verified: bool
    stats: SearchStats
    tree: SearchTree
    strategy: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    chosen: Node | None = field(default=None, repr=False)  # the answer's last node, for traces
    logprobs: list[TokenLogprob] | None = None
    """Every token of the chosen path, when the config asked for them (`logprobs`)."""

    def trace(self) -> dict[str, Any]:
        """JSON-ready: the result, the stats and the whole tree (marked: `search.trace_marks`)."""
        return {
            "strategy": self.strategy,
            "text": self.text,
            "steps": self.steps,
            "step_scores": self.step_scores,
            "score": self.score,
            "finish_reason": self.finish_reason,
            "is_verified": self.is_verified,
            "stats": self.stats.to_dict(),
            "tree": annotated_tree(self.tree, self.chosen),
            **self.extra,
        }


def best_node(nodes: list[Node], config: SearchConfig) -> Node | None:
    """Highest aggregated score, preferring finished (terminal) paths, then deeper ones."""
    if not nodes:
        return None
    return max(nodes, key=lambda n: (n.is_terminal, path_value(n, config), n.depth))


def build_result(
    ctx: SearchContext, tree: SearchTree, chosen: Node | None, config: SearchConfig
) -> SearchResult:
    """The reply for `chosen` (the root when nothing was generated); commits its remaining steps."""
    node = chosen or tree.root
    ctx.commit(node.path())
    ctx.events.chosen(node)
    is_eos = node.is_terminal and node.finish_reason == "stop"
    return SearchResult(
        text=node.reply_text(),
        steps=node.step_texts(),
        step_scores=node.path_scores(),
        score=path_value(node, config) if node is not tree.root else 0.0,
        finish_reason="stop" if is_eos else "length",
        is_verified=node.is_verified,
        stats=ctx.stats,
        tree=tree,
        strategy=config.strategy,
        chosen=node,
        logprobs=node.path_logprobs() if config.logprobs is not None else None,
    )
