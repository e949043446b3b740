"""Monte Carlo tree search over steps, with the PRM as the value function (no rollouts).

Selection follows PUCT with the policy's probability of a step (softmax of sibling step
logprobs) as the prior; expansion samples `expansions` steps of the selected leaf in one
call; evaluation is each new step's aggregated PRM score; the value is backed up to the root.
The answer is the best verified leaf, else the best-valued finished leaf; when no path has
finished, the best partial path is completed greedily with whatever budget is left.
"""

from __future__ import annotations

import math

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import expand, path_value, score
from search.result import SearchResult, best_node, build_result
from search.strategies.greedy import extend_greedily
from search.tree import Node, SearchTree

C_PUCT = 1.0
"""Exploration weight (AlphaZero's c_puct); values and priors are both in [0, 1]."""


def puct(parent: Node, child: Node) -> float:
    exploration = C_PUCT * child.prior * math.sqrt(parent.visits) / (1 + child.visits)
    return child.value + exploration


def select(root: Node) -> Node:
    """Descend by PUCT to a node that is unexpanded or finished."""
    node = root
    while node.children and not node.is_terminal:
        node = max(node.distinct_children(), key=lambda child: puct(node, child))
    return node


def backpropagate(node: Node | None, value: float) -> None:
    while node is not None:
        node.visits += 1
        node.value_sum += value
        node = node.parent


async def simulate(ctx: SearchContext, tree: SearchTree, config: SearchConfig) -> bool:
    """One selection-expansion-evaluation-backup round; False when nothing could be expanded."""
    leaf = select(tree.root)
    if leaf.is_terminal:
        backpropagate(leaf, min(1.0, path_value(leaf, config)))
        return True
    groups = await expand(ctx, tree, [leaf], config.expansions, config)
    if not groups:
        return False
    await score(ctx, groups[0], config)
    for child in groups[0]:
        backpropagate(child, min(1.0, path_value(child, config)))
    return True


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = SearchTree(prompt_ids)
    for _ in range(config.simulations):
        if ctx.budget.is_exhausted() or not await simulate(ctx, tree, config):
            break
    nodes = [n for n in tree.root.walk() if n is not tree.root and not n.is_duplicate]
    verified = [n for n in nodes if n.is_verified]
    finished = [n for n in nodes if n.is_terminal]
    chosen = best_node(verified or finished or nodes, config)
    if chosen is not None and not chosen.is_terminal:
        chosen = await extend_greedily(ctx, tree, chosen, config)
        await score(ctx, [chosen], config)
    return build_result(ctx, tree, chosen, config)
