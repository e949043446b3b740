"""What a trace adds to the bare tree for its readers (the viewer, `ponder trace`): the steps
the answer took, the branches the search abandoned, the order nodes were made in, and the
prefill each expansion cost.

Marks, on every node dict of `SearchTree.to_dict()`:
- `is_chosen`: on the path of the answer the search returned (the root too, when there is one).
- `is_pruned`: abandoned. A branch is abandoned when it is off the chosen path and holds no
  usable finished reply: a duplicate of a sibling's step, a step cut by the token cap, or a
  subtree the search stopped expanding before any reply finished. A finished reply that merely
  lost the vote is not pruned: it is an alternative answer.
- `seq`: 1..N in the order nodes joined the tree (the root is 0), for replaying the search.
- `num_prompt_tokens_computed` / `_reused`: prefill spent expanding the node.
"""

from __future__ import annotations

from typing import Any

from search.tree import Node, SearchTree


def is_usable_reply(node: Node) -> bool:
    """A finished reply a strategy may answer with: ended on its own, not a duplicate."""
    return node.is_terminal and not node.is_cut and not node.is_duplicate


def nodes_with_replies(root: Node) -> set[int]:
    """Ids of the nodes whose subtree (themselves included) holds a usable finished reply."""
    found: set[int] = set()
    for node in reversed(list(root.walk())):  # reversed pre-order: children before parents
        if is_usable_reply(node) or any(id(child) in found for child in node.children):
            found.add(id(node))
    return found


def creation_order(root: Node) -> dict[int, int]:
    """Node id -> 1..N in the order the nodes joined the tree (the root is absent)."""
    nodes = sorted((n for n in root.walk() if n is not root), key=lambda n: n.seq)
    return {id(node): rank for rank, node in enumerate(nodes, start=1)}


def annotated_tree(tree: SearchTree, chosen: Node | None) -> dict[str, Any]:
    """`tree.to_dict()` with the marks above on every node."""
    body = tree.to_dict()
    chosen_ids = {id(node) for node in chosen.path()} if chosen is not None else set()
    if chosen_ids:
        chosen_ids.add(id(tree.root))
    with_replies = nodes_with_replies(tree.root)
    order = creation_order(tree.root)
    for node, entry in _pairs(tree.root, body["root"]):
        is_chosen = id(node) in chosen_ids
        entry["seq"] = order.get(id(node), 0)
        entry["is_chosen"] = is_chosen
        entry["is_pruned"] = node is not tree.root and not is_chosen and id(node) not in with_replies
        entry["num_prompt_tokens_computed"] = node.num_prompt_tokens_computed
        entry["num_prompt_tokens_reused"] = node.num_prompt_tokens_reused
    return body


def _pairs(root: Node, entry: dict[str, Any]) -> list[tuple[Node, dict[str, Any]]]:
    """Each node with its dict (`Node.to_dict` keeps the children's order); iterative."""
    pairs: list[tuple[Node, dict[str, Any]]] = []
    stack = [(root, entry)]
    while stack:
        node, body = stack.pop()
        pairs.append((node, body))
        stack.extend(zip(node.children, body["children"], strict=True))
    return pairs
