"""Trace marks (`search.trace_marks`): the chosen path, abandoned branches, replay order and
per-node prefill, on hand-built trees and on real searches with the bundled Countdown policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from search.config import SearchConfig
from search.runner import run_search
from search.trace_marks import annotated_tree
from search.tree import Node, SearchTree

SMALL = {"n": 3, "beam_width": 2, "expansions": 2, "simulations": 10, "max_step_tokens": 24, "seed": 3}


def flat(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node dict of a trace tree, root first (pre-order)."""
    nodes, stack = [], [entry]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(node["children"]))
    return nodes


def build_small_tree() -> tuple[SearchTree, dict[str, Node]]:
    """root -> a -> a1 (finished), a2 (cut); root -> b (never expanded); root -> c (duplicate of a)."""
    tree = SearchTree(prompt_ids=[1, 2])
    nodes = {"a": tree.root.add_child(Node(text="a"))}
    nodes["b"] = tree.root.add_child(Node(text="b"))
    nodes["c"] = tree.root.add_child(Node(text="a", is_duplicate=True))
    nodes["a1"] = nodes["a"].add_child(Node(text="a1", is_terminal=True, finish_reason="stop"))
    nodes["a2"] = nodes["a"].add_child(Node(text="a2", is_terminal=True, finish_reason="length"))
    return tree, nodes


@pytest.mark.parametrize(
    ("chosen", "chosen_texts", "pruned_texts"),
    [
        ("a1", ["", "a", "a1"], ["b", "a", "a2"]),  # the pruned "a" is c, a duplicate of a
        ("b", ["", "b"], ["a", "a2"]),  # the answer may be an unfinished path: b is chosen, not pruned
        (None, [], ["b", "a", "a2"]),
    ],
)
def test_marks_on_a_hand_built_tree(
    chosen: str | None, chosen_texts: list[str], pruned_texts: list[str]
) -> None:
    tree, nodes = build_small_tree()
    body = annotated_tree(tree, nodes[chosen] if chosen else None)
    entries = flat(body["root"])
    assert [e["text"] for e in entries if e["is_chosen"]] == chosen_texts
    assert sorted(e["text"] for e in entries if e["is_pruned"]) == sorted(pruned_texts)
    assert [e["seq"] for e in entries] == [0, 1, 4, 5, 2, 3]  # a, b, c, a1, a2 joined in that order


def test_prefill_is_charged_to_the_expanded_node() -> None:
    tree, nodes = build_small_tree()
    nodes["a"].num_prompt_tokens_computed, nodes["a"].num_prompt_tokens_reused = 3, 9
    entry = annotated_tree(tree, None)["root"]["children"][0]
    assert (entry["num_prompt_tokens_computed"], entry["num_prompt_tokens_reused"]) == (3, 9)


@pytest.mark.parametrize("strategy", ["mcts", "beam", "best_of_n"])
def test_real_search_trace_marks_its_answer_and_its_accounting(runner, problems, strategy: str) -> None:
    problem = problems[1]
    config = SearchConfig(strategy=strategy, budget_tokens=256, max_seconds=120.0, **SMALL)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), config))
    trace = json.loads(json.dumps(result.trace()))
    entries = flat(trace["tree"]["root"])
    chosen = [e for e in entries if e["is_chosen"]]
    assert [e["text"] for e in chosen if e["text"].strip()] == result.steps
    assert all(not (e["is_chosen"] and e["is_pruned"]) for e in entries)
    assert sorted(e["seq"] for e in entries) == list(range(len(entries)))
    stats = result.stats
    assert sum(e["num_prompt_tokens_computed"] for e in entries) == stats.num_prompt_tokens_computed
    assert sum(e["num_prompt_tokens_reused"] for e in entries) == stats.num_prompt_tokens_reused
    assert len(trace["stats"]["prm_call_seconds"]) == stats.num_prm_calls
    assert all(seconds > 0 for seconds in trace["stats"]["prm_call_seconds"])
