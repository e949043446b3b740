"""Greedy decoding, one step at a time: the baseline every search must beat at equal tokens."""

from __future__ import annotations

from dataclasses import replace

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import expand, score
from search.result import SearchResult, build_result
from search.tree import Node, SearchTree


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
    assert duplicate.parent is not None
    return next(c for c in duplicate.parent.distinct_children() if c.text == duplicate.text)


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """Each step is committed (streamed) as soon as it exists: greedy never changes its mind."""
    tree = SearchTree(prompt_ids)
    node = await extend_greedily(ctx, tree, tree.root, config, is_committing=True)
    await score(ctx, [node] if node is not tree.root else [], config)
    return build_result(ctx, tree, node, config)
