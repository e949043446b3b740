"""Whole replies sampled in one call and hung in the tree as chains of steps.

Best-of-N, self-consistency, revision and every rollout sample complete replies (not a step at
a time); each reply is cut into steps after the tokens that complete the task's step end, so
its steps are nodes like any expanded step, and a later expansion may branch from any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.protocol import Continuation, TokenLogprob
from search.config import SearchConfig
from search.context import SearchContext
from search.expand import charge_prefill, generate, reply_room, verify
from search.tree import Node, SearchTree

MAX_REPLY_TOKENS_PER_STEP_CAP = 8
"""A full reply may use up to this many steps' worth of `max_step_tokens`."""


@dataclass
class Piece:
    """One step's tokens of a reply, with their summed log-probability."""

    token_ids: list[int] = field(default_factory=list)
    logprob: float = 0.0
    token_logprobs: list[TokenLogprob] = field(default_factory=list)


def split_steps(ctx: SearchContext, c: Continuation) -> list[Piece]:
    """A full reply's tokens cut after each token that completes the task's step end."""
    step_end = ctx.task.step_end
    pieces: list[Piece] = []
    piece, text = Piece(), ""
    logprobs = c.logprobs or []
    for i, token_id in enumerate(c.token_ids):
        piece.token_ids.append(token_id)
        if i < len(logprobs):
            piece.logprob += logprobs[i].logprob
            piece.token_logprobs.append(logprobs[i])
        text += ctx.engine.detokenize([token_id])
        if step_end in text:
            pieces.append(piece)
            piece, text = Piece(), ""
    if piece.token_ids or not pieces:
        pieces.append(piece)
    return pieces


def step_text(ctx: SearchContext, ids: list[int], cut_at: str | None) -> str:
    """A step's text without its step end (and without the request's stop string that ended it)."""
    text = ctx.engine.detokenize(ids)
    if cut_at is not None and cut_at in text:
        text = text[: text.index(cut_at)]
    return text.removesuffix(ctx.task.step_end).strip("\n")


def add_chain(ctx: SearchContext, parent: Node, c: Continuation, config: SearchConfig) -> Node:
    """Hang a full reply under `parent` as a chain of step nodes; returns its last node."""
    node = parent
    pieces = split_steps(ctx, c)
    user_stop = c.stop_str if c.stop_str in config.stop else None
    for i, piece in enumerate(pieces):
        is_last = i == len(pieces) - 1
        text = step_text(ctx, piece.token_ids, user_stop if is_last else None)
        node = node.add_child(Node(token_ids=piece.token_ids, text=text, logprob=piece.logprob))
        if config.logprobs is not None:
            node.token_logprobs = piece.token_logprobs
        ctx.stats.num_nodes_expanded += 1
        if is_last:
            node.is_terminal, node.finish_reason = True, c.finish_reason
        ctx.events.added(node)
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
    budget or `max_reply_tokens` leaves nothing."""
    wanted = reply_room(parents, config.max_step_tokens * MAX_REPLY_TOKENS_PER_STEP_CAP, config)
    prefixes = [parent.prefix_ids(tree.prompt_ids) for parent in parents]
    results = await generate(ctx, prefixes, n, wanted, config, stop=False) if wanted > 0 else []
    if not results:
        return []
    for parent, group in zip(parents, results, strict=True):
        charge_prefill(parent, group)
    pairs = zip(parents, results, strict=True)
    groups = [[add_chain(ctx, parent, c, config) for c in group] for parent, group in pairs]
    verify(ctx, [leaf for group in groups for leaf in group], config)
    return groups
