"""Self-consistency: sample N replies and return one carrying the majority final answer.

Answers are normalised before voting: a Countdown answer line votes for the value its
expression evaluates to, so `25+50` and `50+25` agree. With `prm` on, votes are weighted by
the reply's aggregated PRM score; with the verifier on, a verified answer wins outright.
"""

from __future__ import annotations

from collections import defaultdict

from rewards.countdown.expression import evaluate
from rewards.countdown.steps import ANSWER_PREFIX, split_reply
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import path_value, sample_replies, score
from search.result import SearchResult, build_result
from search.tree import Node, SearchTree


def normalise_answer(reply: str) -> str | None:
    """The vote a reply casts: its answer's value, else the answer text; None without one."""
    answer = split_reply(reply).answer_line
    if answer is None:
        return None
    expression = answer[len(ANSWER_PREFIX) :].strip()
    try:
        return f"value={evaluate(expression).value}"
    except ValueError:
        return f"text={expression}"


def vote(leaves: list[Node], config: SearchConfig) -> Node | None:
    """The best-scored reply among those with the winning answer."""
    groups: dict[str, list[Node]] = defaultdict(list)
    for leaf in leaves:
        key = "verified" if leaf.is_verified else normalise_answer(leaf.reply_text())
        if key is not None:
            groups[key].append(leaf)
    if not groups:
        return max(leaves, key=lambda n: path_value(n, config), default=None)

    def weight(members: list[Node]) -> float:
        if "verified" in groups and members is groups["verified"]:
            return float("inf")
        return sum(path_value(m, config) for m in members) if config.prm else float(len(members))

    winners = max(groups.values(), key=weight)
    return max(winners, key=lambda n: path_value(n, config))


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = SearchTree(prompt_ids)
    leaves = await sample_replies(ctx, tree, tree.root, config.n, config)
    await score(ctx, leaves, config)
    result = build_result(ctx, tree, vote(leaves, config), config)
    votes: dict[str, int] = defaultdict(int)
    for leaf in leaves:
        votes[str(normalise_answer(leaf.reply_text()))] += 1
    result.extra["votes"] = dict(votes)
    return result
