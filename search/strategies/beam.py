"""Step-level beam search guided by the PRM (search-and-learn's `beam_search`): `beam` with
`rollout: false`. By default `beam` values steps by rollouts instead (`beam_lookahead`, chosen in
`search.registry`), since a PRM that scores every right step alike cannot rank partial paths.

Each round expands every live beam `expansions` ways (the root `beam_width * expansions` ways)
in one batched call, scores the new steps, and keeps the `beam_width` best partial paths by
aggregated score. Finished paths leave the beam; a beam is done when `beam_width` of them exist.
Near the end of the budget only the best beams the budget can still pay full steps for are
expanded. Paths cut from the beam are kept: while budget is left, the best of them seed the next
beam, so the search backtracks to the most promising step it dropped instead of stopping with
tokens unspent (with the exact step labeller as PRM a single beam left ~40% of a 512-token
budget unused). The answer is chosen among the finished paths by PRM-weighted vote over their
normalised answers (search-and-learn's weighted best-of-N), which a PRM that over-rates one path
cannot swing on its own.
"""

from __future__ import annotations

from search.answer import vote
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import affordable_nodes, expand, path_value, score
from search.result import SearchResult, best_node, build_result
from search.tree import Node, SearchTree, common_path


def samples_per_beam(beams: list[Node], config: SearchConfig) -> int:
    """`expansions`, except for the root alone, which gets a whole round's `beam_width *
    expansions` samples (search-and-learn starts from N first steps): sampled only
    `expansions` ways, the search would start from fewer first steps than best-of-N does,
    while 79% of the policy's first steps at T=0.3 already make the target unreachable."""
    if len(beams) == 1 and beams[0].parent is None:
        return config.beam_width * config.expansions
    return config.expansions


def rank(nodes: list[Node], config: SearchConfig) -> list[Node]:
    """Best aggregated score first; deeper paths first among equals (they are nearer an answer)."""
    return sorted(nodes, key=lambda n: (path_value(n, config), n.depth), reverse=True)


async def beam_rounds(
    ctx: SearchContext,
    tree: SearchTree,
    beams: list[Node],
    width: int,
    config: SearchConfig,
    pruned: list[Node],
    finished: list[Node],
) -> list[Node]:
    """Advance `beams` until `width` paths finish or the budget ends; cut paths go to `pruned`,
    finished ones to `finished`. Returns the beams still live."""
    done = 0
    while beams and done < width and not ctx.budget.is_exhausted():
        k = samples_per_beam(beams, config)
        affordable = affordable_nodes(ctx, tree, k, config)
        if affordable == 0:  # not one beam k ways: the best beam, as many ways as fit (>= 1)
            k, affordable = max(1, min(k, affordable_nodes(ctx, tree, 1, config))), 1
        pruned.extend(beams[affordable:])  # the weakest wait for a backtrack; beams are ranked
        ctx.events.pruned(beams[affordable:], "budget")
        beams = beams[:affordable]
        groups = await expand(ctx, tree, beams, k, config)
        children = [child for group in groups for child in group if not child.is_cut]
        if not children:
            break
        await score(ctx, children, config)
        ended = [c for c in children if c.is_terminal]
        finished.extend(ended)
        done += len(ended)
        ranked = rank([c for c in children if not c.is_terminal], config)
        beams = ranked[:width]
        pruned.extend(ranked[width:])
        ctx.events.pruned(ranked[width:], "beam")
        ctx.commit(common_path(beams + finished + pruned))
    return beams


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    """Beams ranked by the PRM's score of their partial paths, backtracking while budget is left."""
    tree = ctx.new_tree(prompt_ids)
    pruned: list[Node] = []
    finished: list[Node] = []
    live = await beam_rounds(ctx, tree, [tree.root], config.beam_width, config, pruned, finished)
    while pruned + live and not ctx.budget.is_exhausted():
        spent = ctx.budget.tokens_used
        ranked = rank(pruned + live, config)
        seeds, pruned[:] = ranked[: config.beam_width], ranked[config.beam_width :]
        live = await beam_rounds(ctx, tree, seeds, config.beam_width, config, pruned, finished)
        if ctx.budget.tokens_used == spent:  # too few tokens left for even one step each
            break
    chosen = vote(finished, config, ctx.task) if finished else best_node(live, config)
    return build_result(ctx, tree, chosen, config)
