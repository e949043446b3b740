"""MCTS selection under virtual loss, on hand-built trees (the search itself runs in
test_strategies.py on the real models)."""

from __future__ import annotations

from search.puct import backpropagate, select, select_round
from search.tree import Node


def tree_with_children(values: list[float]) -> tuple[Node, list[Node]]:
    root = Node()
    children = [root.add_child(Node(text=f"step {i}", prior=1 / len(values))) for i in range(len(values))]
    for child, value in zip(children, values, strict=True):
        backpropagate(child, value)
    return root, children


def test_a_round_spreads_over_distinct_leaves_best_first():
    root, children = tree_with_children([0.2, 0.9, 0.5, 0.4])  # two batches of 2: fully widened
    leaves = select_round(root, 3, expansions=2)
    assert leaves[0] is children[1]
    assert len({id(leaf) for leaf in leaves}) == 3


def test_virtual_losses_are_removed_after_the_round():
    root, children = tree_with_children([0.2, 0.9, 0.5])
    before = [(n.visits, n.value_sum) for n in root.walk()]
    select_round(root, 3, expansions=3)
    assert [(n.visits, n.value_sum) for n in root.walk()] == before


def test_an_unexpanded_root_is_selected_once():
    root = Node()
    assert select_round(root, 4, expansions=2) == [root]


def test_a_node_widens_once_its_visits_allow_another_batch():
    root, children = tree_with_children([0.2, 0.9, 0.5])  # 3 visits: one batch of 3 allowed
    assert select(root, expansions=3) is children[1]
    backpropagate(children[1], 0.0)  # 4 visits: a second batch is owed
    assert select(root, expansions=3) is root


def test_selection_follows_the_better_child_downwards():
    root, children = tree_with_children([0.1, 0.9])
    grandchild = children[1].add_child(Node(text="deeper"))
    backpropagate(grandchild, 0.9)
    assert select(root, expansions=1) is grandchild
