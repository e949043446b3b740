"""The two primitives every strategy is built from: expand nodes (engine) and score them (PRM).

One expansion is one `generate` call: every prefix in the batch is continued `k` ways up to the
task's step end (`Task.step_end`, a stop string), so siblings are decoded together and share
their parent's cached KV. Whole replies are sampled in `search.replies`. The request's own stop
strings end a branch for good (a stop string is matched within one step), and
`max_reply_tokens` caps every path, so no branch grows past the answer the caller can take.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

from engine.protocol import Continuation, SamplingParams
from rewards.aggregation import aggregate
from search.config import SearchConfig
from search.context import PrmScorer, SearchContext
from search.tree import Node, SearchTree

MAX_DEPTH = 12
"""Steps after which a path is cut off: a loop guard (the bundled puzzle's replies have four)."""
STEP_COST_MARGIN = 4
"""Tokens planned per step beyond the longest step the search has sampled."""


def path_tokens(node: Node) -> int:
    return sum(len(step.token_ids) for step in node.path())


def reply_room(nodes: Sequence[Node], wanted: int, config: SearchConfig) -> int:
    """`wanted` new tokens, fewer where `max_reply_tokens` leaves a node's path less room."""
    if config.max_reply_tokens is None or not nodes:
        return wanted
    return min(wanted, config.max_reply_tokens - max(path_tokens(node) for node in nodes))


def ends_reply(c: Continuation, config: SearchConfig) -> bool:
    """EOS, a token cap, an abort, or one of the request's own stop strings (not the step end)."""
    return c.finish_reason != "stop" or c.stop_str is None or c.stop_str in config.stop


def close_at_reply_cap(node: Node, config: SearchConfig) -> None:
    """A path with no room left under `max_reply_tokens` is finished, cut off by length unless
    it ended on its own."""
    if config.max_reply_tokens is None or path_tokens(node) < config.max_reply_tokens:
        return
    if not node.is_terminal:
        node.is_terminal, node.finish_reason = True, "length"


async def generate(
    ctx: SearchContext,
    prefixes: list[list[int]],
    k: int,
    wanted_tokens: int,
    config: SearchConfig,
    stop: bool,
) -> list[list[Continuation]]:
    """Budget-capped generate; [] when the budget, the deadline or the token cap leaves nothing."""
    budget = ctx.budget
    cap = budget.cap_new_tokens(len(prefixes) * k, wanted_tokens)
    if not prefixes or cap < 1 or budget.is_exhausted():
        return []
    seed = None if config.seed is None else config.seed + ctx.stats.num_engine_calls * 1009
    params = SamplingParams(
        max_new_tokens=cap,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        n=k,
        stop=config.stop + ((ctx.task.step_end,) if stop else ()),
        seed=seed,
        # full replies are cut into steps, each needing its own logprob
        logprobs=not stop or config.logprobs is not None,
        top_logprobs=config.logprobs or 0,
        cache_salt=ctx.cache_salt,
    )
    try:
        async with asyncio.timeout(budget.remaining_seconds()):
            results = await ctx.engine.generate(prefixes, params)
    except TimeoutError:
        budget.max_seconds = 0.0  # the deadline passed mid-call: nothing more will run
        return []
    _account(ctx, results)
    return results


def _account(ctx: SearchContext, results: list[list[Continuation]]) -> None:
    stats = ctx.stats
    stats.num_engine_calls += 1
    num_tokens = sum(len(c.token_ids) for group in results for c in group)
    ctx.budget.charge(num_tokens)
    stats.num_tokens_generated += num_tokens
    for group in results:  # one prefill per prefix, shared by its k samples
        stats.num_prompt_tokens_reused += group[0].num_cached_prompt_tokens
        stats.num_prompt_tokens_computed += group[0].num_prompt_tokens - group[0].num_cached_prompt_tokens


def charge_prefill(node: Node, group: list[Continuation]) -> None:
    """The prefill of one expansion of `node` (shared by its samples), as `_account` counts it."""
    node.num_prompt_tokens_reused += group[0].num_cached_prompt_tokens
    node.num_prompt_tokens_computed += group[0].num_prompt_tokens - group[0].num_cached_prompt_tokens


def _step_node(c: Continuation, parent: Node, config: SearchConfig) -> Node:
    node = Node(token_ids=list(c.token_ids), text=c.text, logprob=c.cumulative_logprob)
    node.token_logprobs = c.logprobs if config.logprobs is not None else None
    node.finish_reason = c.finish_reason
    parent.add_child(node)
    node.is_terminal = ends_reply(c, config) or node.depth >= MAX_DEPTH
    close_at_reply_cap(node, config)
    return node


def step_cost(tree: SearchTree, config: SearchConfig) -> int:
    """Tokens to plan for one sampled step: the longest this search has sampled plus a margin,
    `max_step_tokens` before any. A task's steps are alike in length (the bundled puzzle
    policy's run 15-22 tokens), so planning for the worst case held back 144 tokens where ~60
    finish a reply."""
    longest = max((len(n.token_ids) for n in tree.root.walk() if n is not tree.root), default=None)
    if longest is None:
        return config.max_step_tokens
    return min(config.max_step_tokens, longest + STEP_COST_MARGIN)


def affordable_nodes(
    ctx: SearchContext, tree: SearchTree, k: int, config: SearchConfig, reserve_steps: int = 0
) -> int:
    """How many nodes can be expanded `k` ways at `step_cost` tokens a step, keeping
    `reserve_steps` steps' worth of budget back. Expanding more would shrink every sequence's
    token cap (`generate` splits what is left evenly) and cut all their steps short: a beam
    search at 256 tokens whose last round was cut that way got 0.02 accuracy instead of 0.15."""
    cost = step_cost(tree, config)
    spendable = ctx.budget.remaining_tokens() - reserve_steps * cost
    return max(0, spendable // (k * cost))


def set_priors(children: list[Node]) -> None:
    """Siblings' policy probabilities, normalised among them (a softmax of step logprobs)."""
    if not children:
        return
    top = max(c.logprob for c in children)
    weights = [math.exp(c.logprob - top) for c in children]
    for child, weight in zip(children, weights, strict=True):
        child.prior = weight / sum(weights)


async def expand(
    ctx: SearchContext, tree: SearchTree, nodes: list[Node], k: int, config: SearchConfig
) -> list[list[Node]]:
    """Sample `k` next steps for each node; children are added to the tree and returned per node.

    A sampled step identical to a sibling (common at low temperature) stays in the tree, since
    its tokens were spent, but is marked a duplicate and not returned: a beam of two copies of
    one path, or an MCTS prior split between copies, would only waste the budget."""
    prefixes = [node.prefix_ids(tree.prompt_ids) for node in nodes]
    wanted = reply_room(nodes, config.max_step_tokens, config)
    results = await generate(ctx, prefixes, k, wanted, config, stop=True) if wanted > 0 else []
    if not results:
        return []
    children: list[list[Node]] = []
    for node, group in zip(nodes, results, strict=True):
        charge_prefill(node, group)
        seen = {child.text for child in node.distinct_children()}
        kids = []
        for c in group:
            kid = _step_node(c, node, config)
            kid.is_duplicate = kid.text in seen
            ctx.events.added(kid)
            if not kid.is_duplicate:
                seen.add(kid.text)
                kids.append(kid)
        set_priors(kids)
        children.append(kids)
        ctx.stats.num_nodes_expanded += 1
    verify(ctx, [kid for kids in children for kid in kids], config)
    return children


def verify(ctx: SearchContext, nodes: Sequence[Node], config: SearchConfig) -> None:
    """Mark the finished nodes the verifier accepts (with `verifier` on and a verifier given)."""
    if not config.verifier or ctx.verifier is None:
        return
    for node in nodes:
        if node.is_terminal and ctx.verifier(node.reply_text()):
            node.is_verified = True
            ctx.budget.mark_verified()


async def score(ctx: SearchContext, nodes: Sequence[Node], config: SearchConfig) -> None:
    """Set `prm_score` on every node (and on unscored steps of its path) from one PRM call.

    Without a PRM (or with `prm` off) a step's score is its per-token policy probability.
    Every step scored here is reported (`score` events), in path order.
    """
    todo = [n for n in nodes if n.prm_score is None]
    if not todo:
        return
    unscored = list({id(s): s for node in todo for s in node.path() if s.prm_score is None}.values())
    if ctx.prm is None or not config.prm:
        for step in unscored:
            step.prm_score = math.exp(step.logprob / max(1, len(step.token_ids)))
    else:
        await _score_by_prm(ctx, ctx.prm, todo)
    for step in unscored:
        ctx.events.scored(step, path_value(step, config))


async def _score_by_prm(ctx: SearchContext, prm: PrmScorer, todo: list[Node]) -> None:
    """One PRM call over the paths of `todo`; sets every unscored step's score on them."""
    paths = [[step for step in node.path() if _is_judgeable(step)] for node in todo]
    ctx.stats.num_prm_calls += 1
    began = time.monotonic()
    scores = await prm.score(ctx.prompt_text, [[s.text for s in p] for p in paths if p])
    ctx.stats.prm_call_seconds.append(time.monotonic() - began)
    it = iter(scores)
    for node, path in zip(todo, paths, strict=True):
        for step, value in zip(path, next(it) if path else [], strict=True):
            step.prm_score = value if step.prm_score is None else step.prm_score
        if node.prm_score is None:  # truncated or empty: a step that never finished fails
            node.prm_score = 0.0 if not _is_judgeable(node) or not path else path[-1].prm_score


def _is_judgeable(step: Node) -> bool:
    """Only complete, non-empty steps go to the PRM (a truncated one could overflow its context)."""
    return bool(step.text.strip()) and step.finish_reason != "length"


def path_value(node: Node, config: SearchConfig) -> float:
    """The aggregated score of a node's path; verified answers rank above everything."""
    if node.is_verified:
        return 2.0
    scores = node.path_scores()
    return aggregate(scores, config.aggregate) if scores else 0.0
