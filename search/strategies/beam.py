"""Step-level beam search guided by the PRM (search-and-learn's `beam_search`).

Each round expands every live beam `expansions` ways in one batched call, scores the new
steps, and keeps the `beam_width` best partial paths by aggregated score. Finished paths leave
the beam; the search ends when `beam_width` of them exist or the budget runs out.
"""

from __future__ import annotations

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import expand, path_value, score
from search.result import SearchResult, best_node, build_result
from search.tree import Node, SearchTree


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


async def beam_rounds(
    ctx: SearchContext, tree: SearchTree, beams: list[Node], width: int, config: SearchConfig
) -> list[Node]:
    """Advance `beams` until `width` paths finish or the budget ends; returns finished + live."""
    finished: list[Node] = []
    while beams and len(finished) < width and not ctx.budget.is_exhausted():
        groups = await expand(ctx, tree, beams, config.expansions, config)
        children = [child for group in groups for child in group]
        if not children:
            break
        await score(ctx, children, config)
        finished.extend(c for c in children if c.is_terminal)
        live = [c for c in children if not c.is_terminal]
        beams = sorted(live, key=lambda n: path_value(n, config), reverse=True)[:width]
        ctx.commit(common_path(beams + finished))
    return finished + beams


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = SearchTree(prompt_ids)
    candidates = await beam_rounds(ctx, tree, [tree.root], config.beam_width, config)
    return build_result(ctx, tree, best_node(candidates, config), config)
