"""Revision: sample a reply, find its first weak step by PRM score, resample from there.

Each round keeps the steps before the weak one (their KV is cached) and regenerates the rest
in one call, so a revision costs only the new tail. The best reply seen so far is revised next;
`n` bounds the number of revisions.
"""

from __future__ import annotations

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import path_value, score
from search.replies import sample_replies
from search.result import SearchResult, best_node, build_result
from search.tree import Node

WEAK_STEP_THRESHOLD = 0.5
"""A step the PRM gives less than even odds of being on track is the one to redo."""


def first_weak_step(leaf: Node) -> Node | None:
    """The earliest scored step below the threshold on the leaf's path, or None."""
    for step in leaf.path():
        if step.text.strip() and step.prm_score is not None and step.prm_score < WEAK_STEP_THRESHOLD:
            return step
    return None


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = ctx.new_tree(prompt_ids)
    candidates = await sample_replies(ctx, tree, tree.root, 1, config)
    await score(ctx, candidates, config)
    for _ in range(config.n):
        best = best_node(candidates, config)
        weak = first_weak_step(best) if best is not None else None
        if best is None or best.is_verified or weak is None or ctx.budget.is_exhausted():
            break
        restart = weak.parent or tree.root
        revised = await sample_replies(ctx, tree, restart, 1, config)
        if not revised:
            break
        await score(ctx, revised, config)
        candidates.extend(revised)
    chosen = max(candidates, key=lambda n: path_value(n, config), default=None)
    return build_result(ctx, tree, chosen, config)
