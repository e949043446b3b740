"""The two primitives every strategy is built from: expand nodes (engine) and score them (PRM).

One expansion is one `generate` call: every prefix in the batch is continued `k` ways with
`stop=("\\n",)`, so siblings are decoded together and share their parent's cached KV.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from engine.protocol import Continuation, SamplingParams
from rewards.aggregation import aggregate
from search.config import SearchConfig
from search.context import SearchContext
from search.tree import Node, SearchTree

STEP_STOP = "\n"
MAX_DEPTH = 12
"""Steps after which a path is cut off: a loop guard (a Countdown reply has four)."""
MAX_REPLY_TOKENS_PER_STEP_CAP = 8
"""A full reply may use up to this many steps' worth of `max_step_tokens`."""
STEP_COST_MARGIN = 4
"""Tokens planned per step beyond the longest step the search has sampled."""


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
        n=k,
        stop=(STEP_STOP,) if stop else (),
        seed=seed,
        logprobs=not stop,  # full replies are cut into steps, each needing its own logprob
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


def _step_node(c: Continuation, parent: Node, ctx: SearchContext) -> Node:
    node = Node(token_ids=list(c.token_ids), text=c.text, logprob=c.cumulative_logprob)
    node.finish_reason = c.finish_reason
    parent.add_child(node)
    ended = c.finish_reason != "stop" or c.stop_str is None  # EOS, length cap or abort
    node.is_terminal = ended or node.depth >= MAX_DEPTH
    return node


def step_cost(tree: SearchTree, config: SearchConfig) -> int:
    """Tokens to plan for one sampled step: the longest this search has sampled plus a margin,
    `max_step_tokens` before any. A task's steps are alike in length (Countdown's run 15-22
    tokens), so planning for the worst case held back 144 tokens where ~60 finish a reply."""
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
    results = await generate(ctx, prefixes, k, config.max_step_tokens, config, stop=True)
    if not results:
        return []
    children: list[list[Node]] = []
    for node, group in zip(nodes, results, strict=True):
        seen = {child.text for child in node.distinct_children()}
        kids = []
        for c in group:
            kid = _step_node(c, node, ctx)
            kid.is_duplicate = kid.text in seen
            if not kid.is_duplicate:
                seen.add(kid.text)
                kids.append(kid)
        set_priors(kids)
        children.append(kids)
        ctx.stats.num_nodes_expanded += 1
    _verify(ctx, [kid for kids in children for kid in kids], config)
    return children


def _split_steps(ctx: SearchContext, c: Continuation) -> list[tuple[list[int], float]]:
    """A full reply's tokens cut after each token that contains a newline, with step logprobs."""
    pieces: list[tuple[list[int], float]] = []
    ids: list[int] = []
    logprob = 0.0
    logprobs = c.logprobs or []
    for i, token_id in enumerate(c.token_ids):
        ids.append(token_id)
        logprob += logprobs[i].logprob if i < len(logprobs) else 0.0
        if STEP_STOP in ctx.engine.detokenize([token_id]):
            pieces.append((ids, logprob))
            ids, logprob = [], 0.0
    if ids or not pieces:
        pieces.append((ids, logprob))
    return pieces


def _add_chain(ctx: SearchContext, parent: Node, c: Continuation) -> Node:
    """Hang a full reply under `parent` as a chain of step nodes; returns its last node."""
    node = parent
    pieces = _split_steps(ctx, c)
    for i, (ids, logprob) in enumerate(pieces):
        text = ctx.engine.detokenize(ids).strip(STEP_STOP)
        node = node.add_child(Node(token_ids=ids, text=text, logprob=logprob))
        ctx.stats.num_nodes_expanded += 1
        if i == len(pieces) - 1:
            node.is_terminal, node.finish_reason = True, c.finish_reason
    return node


async def sample_replies(
    ctx: SearchContext, tree: SearchTree, parent: Node, n: int, config: SearchConfig
) -> list[Node]:
    """`n` complete replies continuing `parent` in one call; returns each reply's last node."""
    groups = await sample_continuations(ctx, tree, [parent], n, config)
    return groups[0] if groups else []


async def sample_continuations(
    ctx: SearchContext,
    tree: SearchTree,
    parents: list[Node],
    n: int,
    config: SearchConfig,
) -> list[list[Node]]:
    """`n` complete replies continuing each of `parents`, all in one call (siblings share
    their parent's prefill); returns each parent's replies as their last nodes, [] when the
    budget leaves nothing."""
    wanted = config.max_step_tokens * MAX_REPLY_TOKENS_PER_STEP_CAP
    prefixes = [parent.prefix_ids(tree.prompt_ids) for parent in parents]
    results = await generate(ctx, prefixes, n, wanted, config, stop=False)
    if not results:
        return []
    pairs = zip(parents, results, strict=True)
    groups = [[_add_chain(ctx, parent, c) for c in group] for parent, group in pairs]
    _verify(ctx, [leaf for group in groups for leaf in group], config)
    return groups


def _verify(ctx: SearchContext, nodes: Sequence[Node], config: SearchConfig) -> None:
    if not config.verifier or ctx.verifier is None:
        return
    for node in nodes:
        if node.is_terminal and ctx.verifier(node.reply_text()):
            node.is_verified = True
            ctx.budget.mark_verified()


async def score(ctx: SearchContext, nodes: Sequence[Node], config: SearchConfig) -> None:
    """Set `prm_score` on every node (and on unscored steps of its path) from one PRM call.

    Without a PRM (or with `prm` off) a step's score is its per-token policy probability.
    """
    todo = [n for n in nodes if n.prm_score is None]
    if not todo:
        return
    if ctx.prm is None or not config.prm:
        for node in todo:
            for step in node.path():
                step.prm_score = math.exp(step.logprob / max(1, len(step.token_ids)))
        return
    paths = [[step for step in node.path() if _is_judgeable(step)] for node in todo]
    ctx.stats.num_prm_calls += 1
    scores = await ctx.prm.score(ctx.prompt_text, [[s.text for s in p] for p in paths if p])
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
