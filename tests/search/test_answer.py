"""Answer selection through the task: votes pool over answers the task finds the same."""

from __future__ import annotations

from rewards.tasks import get_task
from search.answer import answer_groups, vote
from search.config import SearchConfig
from search.tree import Node, SearchTree


def reply(tree: SearchTree, steps: list[str], score: float, is_verified: bool = False) -> Node:
    node = tree.root
    for text in steps:
        node = node.add_child(Node(token_ids=[0], text=text, prm_score=score))
    node.is_terminal, node.finish_reason, node.is_verified = True, "stop", is_verified
    return node


def test_math_replies_vote_for_equal_values_and_join_steps_as_paragraphs() -> None:
    tree = SearchTree([1], step_end="\n\n")
    half = reply(tree, ["x = 1/2", "\\boxed{\\frac{1}{2}}"], 0.4)
    point_five = reply(tree, ["so", "\\boxed{0.5}"], 0.3)
    third = reply(tree, ["\\boxed{\\frac{1}{3}}"], 0.9)
    math = get_task("math")
    groups = answer_groups([half, point_five, third], math)
    assert list(groups) == ["\\frac{1}{2}", "\\frac{1}{3}"] and groups["\\frac{1}{2}"] == [half, point_five]
    assert half.reply_text() == "x = 1/2\n\n\\boxed{\\frac{1}{2}}"
    assert vote([half, point_five, third], SearchConfig(prm=False, aggregate="min"), math) is half
    # Weighted by score, 0.4 + 0.3 for one half still loses to 0.9 for a third.
    assert vote([half, point_five, third], SearchConfig(prm=True, aggregate="min"), math) is third


def test_a_verified_reply_wins_and_no_answer_falls_back_to_the_best_score() -> None:
    tree = SearchTree([1])
    lines = [reply(tree, ["1+2=3 (3)", "answer: 1+2"], 0.9), reply(tree, ["answer: 2+1"], 0.8)]
    odd = reply(tree, ["answer: 3*1"], 0.1, is_verified=True)
    countdown = get_task("countdown")
    assert vote([*lines, odd], SearchConfig(), countdown) is odd
    assert vote(lines, SearchConfig(), countdown) is lines[0]
    unanswered = [reply(tree, ["1+2=3 (3)"], 0.2), reply(tree, ["2+1=3 (3)"], 0.7)]
    assert vote(unanswered, SearchConfig(), countdown) is unanswered[1]


def test_plain_replies_vote_on_normalised_text() -> None:
    tree = SearchTree([1], step_end="\n\n")
    replies = [reply(tree, ["Paris."], 0.2), reply(tree, ["paris"], 0.2), reply(tree, ["Lyon"], 0.9)]
    assert vote(replies, SearchConfig(prm=False), get_task("plain")) is replies[0]
