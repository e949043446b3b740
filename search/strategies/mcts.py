"""Monte Carlo tree search over steps: PUCT selection, expansion by sampled steps, the PRM as
the value function, backup to the root (selection statistics in `search.puct`).

The policy's probability of a step (softmax of sibling step logprobs) is its prior. By default
(`rollout`) a new step is evaluated by rollouts: replies sampled through it to the end, scored
by the PRM (`search.rollout.rollout_round`). With `rollout: false` a step is valued by the PRM's aggregated
score of the partial path alone. That needs a PRM that sees whether a path can still reach
an answer: with the exact step labeller as PRM it beat rollouts at 1024 tokens (0.467 against
0.400 on the tuning split) and lost below (0.207/0.293 against 0.253/0.340 at 256/512).

Simulations run in rounds of up to `LEAVES_PER_ROUND` leaves, expanded in one engine call and
scored in one PRM call. On a CPU a batch of 4 prefixes costs little more than one, so this is
what makes MCTS as fast per token as beam search.

The answer is a verified reply if there is one, else the PRM-weighted vote over the finished
replies (as for beam search; on the tuning split it picked right more often than the single
best-valued reply: 0.347 against 0.320 at 1024 tokens). Without rollouts, until some path has
finished, `FINISH_RESERVE_STEPS` steps' worth of budget is held back, and if none finishes the
best partial path is completed greedily with it: a search must end in an answer.
"""

from __future__ import annotations

from rewards.tasks import Task
from search.answer import finish_greedily, vote
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import affordable_nodes, expand, score, set_priors
from search.puct import backpropagate, node_value, select_open_leaves
from search.result import SearchResult, best_node
from search.rollout import finished_replies, rollout_round
from search.tree import Node, SearchTree

FINISH_RESERVE_STEPS = 3
"""While no path has finished, step-valued simulations stop this many `max_step_tokens` short of
the budget, so that the best partial path can still be completed greedily into an answer."""
LEAVES_PER_ROUND = 4
"""Leaves selected (under virtual loss) and expanded together per round."""


async def step_value_round(ctx: SearchContext, tree: SearchTree, count: int, config: SearchConfig) -> int:
    """One batched selection-expansion-evaluation-backup round with the PRM's partial-path
    score as value; returns the simulations done (0 when nothing could be expanded)."""
    count = min(count, affordable_leaves(ctx, tree, config))
    if count == 0:
        return 0
    selected, open_leaves = select_open_leaves(tree.root, count, config)
    if not open_leaves:
        return selected
    groups = await expand(ctx, tree, open_leaves, config.expansions, config)
    if not groups:
        return 0
    children = [child for group in groups for child in group]
    for leaf in open_leaves:  # earlier batches' children share the prior with the new ones
        set_priors(leaf.distinct_children())
    await score(ctx, children, config)
    for child in children:
        backpropagate(child, node_value(child, config))
    return selected


def has_finished_path(tree: SearchTree) -> bool:
    return any(n.is_terminal and not n.is_duplicate for n in tree.root.walk())


def affordable_leaves(ctx: SearchContext, tree: SearchTree, config: SearchConfig) -> int:
    """Leaves whose expansions fit the budget (`affordable_nodes`). Until a path has finished, a
    reserve for completing the best partial path is kept out of reach; 0 then means stop
    searching and finish."""
    if has_finished_path(tree):
        return max(1, affordable_nodes(ctx, tree, config.expansions, config))
    return affordable_nodes(ctx, tree, config.expansions, config, reserve_steps=FINISH_RESERVE_STEPS)


def answer(tree: SearchTree, config: SearchConfig, task: Task) -> Node:
    """A verified reply, else the vote over finished replies, else the best node (to finish)."""
    nodes = [n for n in tree.root.walk() if n is not tree.root and not n.is_duplicate]
    verified = [n for n in nodes if n.is_verified]
    replies = finished_replies(tree)
    if config.rollout and replies and not verified:
        return vote(replies, config, task) or tree.root
    finished = [n for n in nodes if n.is_terminal]
    return best_node(verified or finished or nodes, config) or tree.root


async def run(ctx: SearchContext, prompt_ids: list[int], config: SearchConfig) -> SearchResult:
    tree = ctx.new_tree(prompt_ids)
    simulate = rollout_round if config.rollout else step_value_round
    done = 0
    while done < config.simulations and not ctx.budget.is_exhausted():
        progress = await simulate(ctx, tree, min(LEAVES_PER_ROUND, config.simulations - done), config)
        if not progress:
            break
        done += progress
    return await finish_greedily(ctx, tree, answer(tree, config, ctx.task), config)
