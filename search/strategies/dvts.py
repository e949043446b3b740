"""Diverse verifier tree search (search-and-learn's `dvts`).

The root is expanded into `beam_width` different first steps; each starts an independent
subtree that is then searched greedily by the PRM (expand `expansions` ways, keep the best
child). All subtrees advance in the same batched call, so each gets an equal share of the
token budget, and diversity survives because no subtree can crowd out another. While budget
is left after they finish, new subtrees start from first steps not tried yet. The answer is
chosen among all finished paths by PRM-weighted vote, as for beam search.
"""

from __future__ import annotations

from search.answer import vote
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import affordable_nodes, expand, path_value, score
from search.result import SearchResult, best_node, build_result
from search.tree import Node, SearchTree


async def advance(
    ctx: SearchContext, tree: SearchTree, heads: list[Node], config: SearchConfig
) -> list[Node]:
    """One greedy PRM step in every live subtree the budget can pay full steps for, best first;
    finished heads and the rest stay as they are."""
    live = sorted((h for h in heads if not h.is_terminal), key=lambda h: path_value(h, config), reverse=True)
    live = live[: affordable_nodes(ctx, tree, config.expansions, config)]
    if not live:
        return heads
    groups = await expand(ctx, tree, live, config.expansions, config)
    if not groups:
        return heads
    await score(ctx, [child for group in groups for child in group], config)
    best = {
        id(head): max(group, key=lambda n: path_value(n, config))
        for head, group in zip(live, groups, strict=True)
    }
    losers = [n for group in groups for n in group if all(n is not b for b in best.values())]
    ctx.events.pruned(losers, "subtree")
    return [best.get(id(h), h) for h in heads]


async def search_subtrees(ctx: SearchContext, tree: SearchTree, config: SearchConfig) -> list[Node]:
    """Up to `beam_width` new subtrees from first steps not tried yet, each searched to its end
    or the budget's; returns their heads ([] when the root yields no new first step)."""
    if not affordable_nodes(ctx, tree, config.beam_width, config):
        return []
    first = await expand(ctx, tree, [tree.root], config.beam_width, config)
    heads = first[0] if first else []
    await score(ctx, heads, config)
    while any(not h.is_terminal for h in heads) and not ctx.budget.is_exhausted():
        advanced = await advance(ctx, tree, heads, config)
        if advanced == heads:
            break
        heads = advanced
    return heads


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """Rounds of fresh subtrees until the budget is spent: one round of `beam_width` subtrees
    finished with half of a 1024-token budget unspent."""
    tree = ctx.new_tree(prompt_ids)
    finished: list[Node] = []
    heads: list[Node] = []
    while not ctx.budget.is_exhausted():
        round_heads = await search_subtrees(ctx, tree, config)
        if not round_heads:
            break
        heads = round_heads
        finished.extend(h for h in heads if h.is_terminal and not h.is_cut)
        if not all(h.is_terminal for h in heads):
            break  # the budget ended inside this round
    chosen = vote(finished, config, ctx.task) if finished else best_node(heads, config)
    return build_result(ctx, tree, chosen, config)
