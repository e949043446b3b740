"""MCTS tree statistics: PUCT selection with progressive widening, virtual loss, and backup.

Nodes widen progressively (Coulom 2007; Chaslot et al. 2008): a node is expanded again,
`expansions` more samples, once its visits allow another batch (`expansions * floor(visits **
PW_ALPHA)` children). So the search goes deep along paths it values and spends new samples
where a path went wrong, instead of sampling every node equally wide.

Leaves are selected in rounds: a virtual loss on each selected path steers the next selection
of the round elsewhere (as in AlphaGo's parallel search), so a round's leaves can be expanded
in one engine call and scored in one PRM call.
"""

from __future__ import annotations

import math

from search.config import SearchConfig
from search.expand import path_value
from search.tree import Node

C_PUCT = 1.0
"""Exploration weight (AlphaZero's c_puct); values and priors are both in [0, 1]."""
PW_ALPHA = 0.5
"""Progressive-widening exponent: a node visited v times may hold floor(v ** 0.5) batches."""


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


def node_value(node: Node, config: SearchConfig) -> float:
    """A node's value to back up: its path's aggregated PRM score (a verified answer's 2.0 as 1)."""
    return min(1.0, path_value(node, config))


def select_open_leaves(root: Node, count: int, config: SearchConfig) -> tuple[int, list[Node]]:
    """A round's selection (`select_round`): finished leaves selected again have their value
    backed up once more; returns how many leaves were selected and those still open."""
    leaves = select_round(root, count, config.expansions)
    for leaf in (leaf for leaf in leaves if leaf.is_terminal):
        backpropagate(leaf, node_value(leaf, config))
    return len(leaves), [leaf for leaf in leaves if not leaf.is_terminal]
