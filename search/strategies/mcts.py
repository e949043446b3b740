"""Monte Carlo tree search over steps, with the PRM as the value function (no rollouts).

Selection follows PUCT with the policy's probability of a step (softmax of sibling step
logprobs) as the prior; expansion samples `expansions` steps of the selected node; evaluation
is each new step's aggregated PRM score; the value is backed up to the root.

Nodes widen progressively (Coulom 2007; Chaslot et al. 2008): a node is expanded again, `expansions`
more samples, once its visits allow another batch (`expansions * floor(visits ** PW_ALPHA)`
children). So the search goes deep along paths the PRM likes and spends new samples where a
path went wrong, instead of sampling every node equally wide: with the exact step labeller as
PRM, that is what separates step-level search from best-of-N at small budgets.

Simulations run in rounds of up to `LEAVES_PER_ROUND` leaves: a virtual loss on each selected
path steers the next selection of the round elsewhere (as in AlphaGo's parallel search), and
the round's leaves are expanded in one engine call and scored in one PRM call. On a CPU a
batch of 4 prefixes costs little more than one, so this is what makes MCTS as fast per token
as beam search.

The answer is the best verified leaf, else the best-valued finished leaf. Until some path has
finished, `FINISH_RESERVE_STEPS` steps' worth of budget is held back, and if none finishes the
best partial path is completed greedily with it: a search must end in an answer.
"""

from __future__ import annotations

import math

from search.config import SearchConfig
from search.context import SearchContext
from search.expand import affordable_nodes, expand, path_value, score, set_priors
from search.result import SearchResult, best_node, build_result
from search.strategies.greedy import extend_greedily
from search.tree import Node, SearchTree

C_PUCT = 1.0
"""Exploration weight (AlphaZero's c_puct); values and priors are both in [0, 1]."""
PW_ALPHA = 0.5
"""Progressive-widening exponent: a node visited v times may hold floor(v ** 0.5) batches."""
FINISH_RESERVE_STEPS = 3
"""While no path has finished, simulations stop this many `max_step_tokens` short of the budget,
so that the best partial path can still be completed greedily into an answer."""
LEAVES_PER_ROUND = 4
"""Leaves selected (under virtual loss) and expanded together per round."""


def puct(parent: Node, child: Node) -> float:
    exploration = C_PUCT * child.prior * math.sqrt(parent.visits) / (1 + child.visits)
    return child.value + exploration


def may_widen(node: Node, expansions: int) -> bool:
    """Whether `node` is owed another batch of samples (duplicates count: they were sampled)."""
    batches = max(1, math.floor(node.visits**PW_ALPHA))
    return len(node.children) < expansions * batches


def select(root: Node, expansions: int) -> Node:
    """Descend by PUCT to a node that is finished or owed samples (unexpanded included)."""
    node = root
    while not node.is_terminal and not may_widen(node, expansions):
        node = max(node.distinct_children(), key=lambda child: puct(node, child))
    return node


def backpropagate(node: Node | None, value: float) -> None:
    while node is not None:
        node.visits += 1
        node.value_sum += value
        node = node.parent


def add_virtual_loss(node: Node | None, sign: int) -> None:
    """A pending visit worth 0 on the path (sign=+1), or its removal (sign=-1)."""
    while node is not None:
        node.visits += sign
        node = node.parent


def select_round(root: Node, count: int, expansions: int) -> list[Node]:
    """Up to `count` distinct leaves, each selected under the virtual losses of those before.

    A leaf selected again gets one more virtual loss and the selection is retried, so a
    dominant branch yields to the runner-up after a few tries instead of ending the round.
    """
    leaves: list[Node] = []
    losses: list[Node] = []
    for _ in range(2 * count):
        if len(leaves) == count:
            break
        leaf = select(root, expansions)
        if leaf is root:
            leaves.append(leaf)  # unexpanded root: nothing else exists to select
            break
        if not any(leaf is chosen for chosen in leaves):
            leaves.append(leaf)
        losses.append(leaf)
        add_virtual_loss(leaf, +1)
    for leaf in losses:
        add_virtual_loss(leaf, -1)
    return leaves


async def simulate_round(ctx: SearchContext, tree: SearchTree, count: int, config: SearchConfig) -> int:
    """One batched selection-expansion-evaluation-backup round; returns the simulations done
    (0 when nothing could be expanded)."""
    leaves = select_round(tree.root, count, config.expansions)
    for leaf in (leaf for leaf in leaves if leaf.is_terminal):
        backpropagate(leaf, min(1.0, path_value(leaf, config)))
    open_leaves = [leaf for leaf in leaves if not leaf.is_terminal]
    if not open_leaves:
        return len(leaves)
    groups = await expand(ctx, tree, open_leaves, config.expansions, config)
    if not groups:
        return 0
    children = [child for group in groups for child in group]
    for leaf in open_leaves:  # earlier batches' children share the prior with the new ones
        set_priors(leaf.distinct_children())
    await score(ctx, children, config)
    for child in children:
        backpropagate(child, min(1.0, path_value(child, config)))
    return len(leaves)


def has_finished_path(tree: SearchTree) -> bool:
    return any(n.is_terminal and not n.is_duplicate for n in tree.root.walk())


def affordable_leaves(ctx: SearchContext, tree: SearchTree, config: SearchConfig) -> int:
    """Leaves whose expansions fit the budget (`affordable_nodes`). Until a path has finished, a
    reserve for completing the best partial path is kept out of reach; 0 then means stop
    searching and finish."""
    if has_finished_path(tree):
        return max(1, affordable_nodes(ctx, tree, config.expansions, config))
    return affordable_nodes(ctx, tree, config.expansions, config, reserve_steps=FINISH_RESERVE_STEPS)


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = SearchTree(prompt_ids)
    done = 0
    while done < config.simulations and not ctx.budget.is_exhausted():
        count = min(LEAVES_PER_ROUND, config.simulations - done, affordable_leaves(ctx, tree, config))
        if count == 0:
            break
        progress = await simulate_round(ctx, tree, count, config)
        if not progress:
            break
        done += progress
    nodes = [n for n in tree.root.walk() if n is not tree.root and not n.is_duplicate]
    verified = [n for n in nodes if n.is_verified]
    finished = [n for n in nodes if n.is_terminal]
    chosen = best_node(verified or finished or nodes, config) or tree.root
    if not chosen.is_terminal:  # from the root when the budget was too small to search
        chosen = await extend_greedily(ctx, tree, chosen, config)
        await score(ctx, [chosen], config)
    return build_result(ctx, tree, chosen, config)
