"""Greedy decoding, one step at a time: the baseline every search must beat at equal tokens."""

from __future__ import annotations

from search.answer import extend_greedily
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import score
from search.result import SearchResult, build_result


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """Each step is committed (streamed) as soon as it exists: greedy never changes its mind."""
    tree = ctx.new_tree(prompt_ids)
    node = await extend_greedily(ctx, tree, tree.root, config, is_committing=True)
    await score(ctx, [node] if node is not tree.root else [], config)
    return build_result(ctx, tree, node, config)
