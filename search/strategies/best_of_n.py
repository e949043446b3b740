"""Best-of-N: sample N whole replies together, keep the one the PRM ranks highest."""

from __future__ import annotations

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import score
from search.replies import sample_replies
from search.result import SearchResult, best_node, build_result


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """N samples in one batched call; ranked by the aggregated PRM score of their steps."""
    tree = ctx.new_tree(prompt_ids)
    leaves = await sample_replies(ctx, tree, tree.root, config.n, config)
    await score(ctx, leaves, config)
    return build_result(ctx, tree, best_node(leaves, config), config)
