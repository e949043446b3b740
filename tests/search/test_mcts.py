"""MCTS selection under virtual loss, on hand-built trees (the search itself runs in
test_strategies.py on the real models)."""

from __future__ import annotations

from search.config import SearchConfig
from search.puct import backpropagate, select, select_round
from search.rollout import descend_to_affordable, rollout_plan
from search.tree import Node, SearchTree


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


def reply_chain(parent: Node, tokens_per_step: list[int], value: float) -> list[Node]:
    """A finished reply hung under `parent`, one node per step, its value backed up."""
    nodes = []
    for i, n in enumerate(tokens_per_step):
        parent = parent.add_child(Node(token_ids=[0] * n, text=f"step {i}", prior=1.0))
        nodes.append(parent)
    parent.is_terminal, parent.finish_reason = True, "stop"
    backpropagate(parent, value)
    return nodes


def test_the_last_tokens_buy_a_rollout_from_deeper_in_the_best_path():
    tree = SearchTree([1, 2, 3])
    good = reply_chain(tree.root, [20, 20, 20, 10], 0.9)
    reply_chain(tree.root, [20, 20, 20, 10], 0.1)
    config = SearchConfig(max_step_tokens=24)
    # A whole reply is planned at 70 + 4 tokens; 40 left pays only for the last two steps.
    plan = rollout_plan(tree, config)
    assert plan.cost(tree.root) == 74
    assert descend_to_affordable(plan, tree.root, 40) is good[1]
    assert descend_to_affordable(plan, tree.root, 10) is None  # not even the last step
