"""Building a trace record from a finished search: every finished reply once, its scores, the
verifier's outcome where there is a verifier, and the chosen answer."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from search.config import SearchConfig
from search.context import SearchStats
from search.result import SearchResult
from search.tree import Node, SearchTree
from server.trace_records import Outcome, build_record


def path(tree: SearchTree, *steps: tuple[str, float], finish: str | None = "stop") -> Node:
    """Add a chain of steps under the root; the last one ends with `finish`."""
    node = tree.root
    for text, score in steps:
        node = node.add_child(Node(text=text, prm_score=score))
    node.is_terminal, node.finish_reason = finish is not None, finish
    return node


def searched() -> tuple[SearchResult, SearchConfig]:
    tree = SearchTree(prompt_ids=[1, 2])
    best = path(tree, ("4+5=9 (9)", 0.9), ("answer: 4+5=9", 0.8))
    path(tree, ("4*5=20 (20)", 0.2), ("answer: 4*5", 0.1))
    path(tree, ("4+5=9 (9)", 0.7), ("answer: 4+5=9", 0.6))  # the same reply again
    path(tree, ("4-", 0.3), finish="length")  # cut by the token cap: no reply
    path(tree, ("5+", 0.3), finish=None)  # never finished
    config = SearchConfig(strategy="beam", budget_tokens=128, aggregate="min")
    result = SearchResult(
        text=best.reply_text(),
        steps=best.step_texts(),
        step_scores=best.path_scores(),
        score=0.8,
        finish_reason="stop",
        is_verified=False,
        stats=SearchStats(num_tokens_generated=40),
        tree=tree,
        strategy="beam",
    )
    return result, config


def makes_nine(text: str) -> bool:
    return text.endswith("=9")


@pytest.mark.parametrize(
    ("outcome", "verdicts", "answer_verdict"), [(makes_nine, [True, False], True), (None, [None, None], None)]
)
def test_a_record_keeps_each_finished_reply_once_with_scores_and_outcome(
    outcome: Outcome | None, verdicts: list[bool | None], answer_verdict: bool | None
) -> None:
    result, config = searched()
    messages = (("system", "be brief"), ("user", "countdown target=9 numbers=4,5"))
    record = build_record(
        result,
        config,
        model="countdown",
        version="countdown-v2",
        owner="o1",
        messages=messages,
        outcome=outcome,
    )
    assert [r.text for r in record.replies] == ["4+5=9 (9)\nanswer: 4+5=9", "4*5=20 (20)\nanswer: 4*5"]
    assert [r.steps for r in record.replies][1] == ["4*5=20 (20)", "answer: 4*5"]
    assert [r.step_scores for r in record.replies] == [[0.9, 0.8], [0.2, 0.1]]
    assert [r.score for r in record.replies] == [0.8, 0.1]  # min, as the search aggregated
    assert [r.is_verified for r in record.replies] == verdicts
    assert (record.answer, record.is_verified) == (result.text, answer_verdict)
    assert record.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": messages[1][1]},
    ]
    assert record.settings == asdict(config) and record.settings["budget_tokens"] == 128
    assert (record.model, record.version, record.owner, record.strategy) == (
        "countdown",
        "countdown-v2",
        "o1",
        "beam",
    )
    assert record.tree == result.trace() and (record.id, record.created) == ("", 0.0)


def test_the_api_summary_is_the_record_without_its_tree() -> None:
    result, config = searched()
    record = build_record(result, config, model="m", version="", owner="", messages=(), outcome=None)
    whole, summary = record.to_json(), record.to_json(with_tree=False)
    assert whole["object"] == "search.trace" and whole["tree"] == result.trace()
    assert "tree" not in summary and summary == {k: v for k, v in whole.items() if k != "tree"}
    assert summary["replies"][0]["step_scores"] == [0.9, 0.8]
