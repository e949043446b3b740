"""Self-consistency: sample N replies and return one carrying the majority final answer.

Answers are compared through the task (`search.answer`): an arithmetic answer votes for the
value its expression evaluates to, a math answer for its boxed value. With `prm` on, votes are
weighted by the reply's aggregated PRM score; with the verifier on, a verified answer wins
outright.
"""

from __future__ import annotations

from search.answer import answer_groups, vote
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import score
from search.replies import sample_replies
from search.result import SearchResult, build_result

NO_ANSWER = "None"
"""Where replies that give no answer are counted in the result's `votes`."""


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = ctx.new_tree(prompt_ids)
    leaves = await sample_replies(ctx, tree, tree.root, config.n, config)
    await score(ctx, leaves, config)
    result = build_result(ctx, tree, vote(leaves, config, ctx.task), config)
    groups = answer_groups(leaves, ctx.task, verified_apart=False)
    votes = {key: len(members) for key, members in groups.items()}
    num_unanswered = len(leaves) - sum(votes.values())
    result.extra["votes"] = votes | ({NO_ANSWER: num_unanswered} if num_unanswered else {})
    return result
