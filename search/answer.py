"""Choosing the answer, shared by every strategy: vote among finished replies, or finish one.

Replies vote through the task: each gives an answer key (`Task.answer_key`) and keys the task
finds the same (`Task.same_answer`) pool their votes, so `25+50` and `50+25`, or `\\frac12` and
`0.5`, agree. With `prm` on, votes are weighted by the reply's aggregated score (search-and-learn's
weighted best-of-N), which a PRM that over-rates one reply cannot swing on its own; a verified
reply wins outright. A search whose budget ended inside a path completes it greedily, since a
search must end in an answer.
"""

from __future__ import annotations

from dataclasses import replace

from rewards.tasks import Task
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import expand, path_value, score
from search.result import SearchResult, build_result
from search.tree import Node, SearchTree

VERIFIED = "\x00verified"
"""The group of verified replies: a key no task's answer can be."""


def answer_groups(leaves: list[Node], task: Task, verified_apart: bool = True) -> dict[str, list[Node]]:
    """Replies by the answer they give, in order of first appearance; keys the task finds the
    same are one group under the first of them. Replies without an answer are left out."""
    groups: dict[str, list[Node]] = {}
    for leaf in leaves:
        key = VERIFIED if verified_apart and leaf.is_verified else task.answer_key(leaf.reply_text())
        if key is None:
            continue
        if key not in groups and key != VERIFIED:
            key = next((k for k in groups if k != VERIFIED and task.same_answer(k, key)), key)
        groups.setdefault(key, []).append(leaf)
    return groups


def vote(leaves: list[Node], config: SearchConfig, task: Task) -> Node | None:
    """The best-scored reply among those with the winning answer (the best-scored reply when
    none gives an answer)."""
    groups = answer_groups(leaves, task)
    if not groups:
        return max(leaves, key=lambda n: path_value(n, config), default=None)

    def weight(key: str) -> float:
        if key == VERIFIED:
            return float("inf")
        members = groups[key]
        return sum(path_value(m, config) for m in members) if config.prm else float(len(members))

    winners = groups[max(groups, key=weight)]
    return max(winners, key=lambda n: path_value(n, config))


async def extend_greedily(
    ctx: SearchContext, tree: SearchTree, node: Node, config: SearchConfig, is_committing: bool = False
) -> Node:
    """Argmax steps below `node` until a path ends or the budget does; returns the last step."""
    greedy = replace(config, temperature=0.0)
    while not node.is_terminal:
        children = await expand(ctx, tree, [node], 1, greedy)
        if not children:
            break
        # A step the node already had comes back as a duplicate: continue along the original.
        node = children[0][0] if children[0] else _original_of(node.children[-1])
        if is_committing:
            ctx.commit(node.path())
    return node


async def finish_greedily(
    ctx: SearchContext, tree: SearchTree, chosen: Node, config: SearchConfig
) -> SearchResult:
    """The result for `chosen`, completed greedily (and scored) if it is not a whole reply: a
    search whose budget was too small to finish a path must still end in an answer."""
    if not chosen.is_terminal:
        chosen = await extend_greedily(ctx, tree, chosen, config)
        await score(ctx, [chosen], config)
    return build_result(ctx, tree, chosen, config)


def _original_of(duplicate: Node) -> Node:
    parent = duplicate.parent
    if parent is None:
        raise ValueError("the root has no original: only a sampled step can be a duplicate")
    return next(c for c in parent.distinct_children() if c.text == duplicate.text)
