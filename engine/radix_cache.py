"""A token-level radix tree of KV caches (the RadixAttention idea, after SGLang's radix cache).

Every edge holds a run of token ids and the KV of exactly those tokens, so a branch forked from a
node reuses the KV of the whole path from the root and computes only its own new tokens. Nodes on
a path in use are locked (ref-counted up to the root) and never evicted; unlocked leaves are
evicted least-recently-used once the cache holds more bytes than its capacity.

Namespaces (SGLang's `extra_key`, vLLM's `cache_salt`) give each tenant a root of its own, so
one tenant's prompt never matches another's: a cache hit would tell it what they begin with.
The namespace "" is the shared one.

The tree is single-threaded by design: only the engine's worker thread touches it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

# KV layout of one node: (num_layers, 2 [key, value], num_kv_heads, num_tokens, head_dim)
TOKEN_DIM = 3
SHARED_NAMESPACE = ""


@dataclass(eq=False)
class RadixNode:
    tokens: tuple[int, ...]
    kv: torch.Tensor | None  # (L, 2, H, len(tokens), D); None only at the root
    parent: RadixNode | None
    children: dict[int, RadixNode] = field(default_factory=dict)
    lock_ref: int = 0
    last_access: int = 0

    @property
    def num_bytes(self) -> int:
        return 0 if self.kv is None else self.kv.numel() * self.kv.element_size()


@dataclass(frozen=True)
class PrefixMatch:
    """The longest cached prefix of a query: `node` ends exactly after `num_tokens` tokens."""

    node: RadixNode
    num_tokens: int


class RadixCache:
    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 1:
            raise ValueError("capacity_bytes must be >= 1")
        self.capacity_bytes = capacity_bytes
        self.root = _new_root()
        self._roots: dict[str, RadixNode] = {SHARED_NAMESPACE: self.root}
        self.num_bytes = 0
        self.num_tokens = 0
        self.num_nodes = 0
        self.num_evictions = 0
        self.num_locked = 0  # nodes with lock_ref > 0, the root excluded
        self._clock = itertools.count(1)

    # --- lookups -----------------------------------------------------------------------------

    @property
    def num_namespaces(self) -> int:
        """Namespaces other than the shared one that hold nodes."""
        return len(self._roots) - 1

    def match_prefix(self, token_ids: Sequence[int], namespace: str = SHARED_NAMESPACE) -> PrefixMatch:
        """Walk `namespace`'s tree along `token_ids`; split an edge where the match ends inside it."""
        # An unknown namespace matches nothing; its root is made by the first insert, not here.
        node, matched = self._roots.get(namespace) or _new_root(), 0
        now = next(self._clock)
        while matched < len(token_ids):
            child = node.children.get(token_ids[matched])
            if child is None:
                break
            common = _common_prefix_len(child.tokens, token_ids[matched:])
            if common < len(child.tokens):
                child = self._split(child, common)
            child.last_access = now
            node, matched = child, matched + common
        return PrefixMatch(node, matched)

    def gather_kv(self, node: RadixNode) -> torch.Tensor | None:
        """The KV of the whole path root..node, concatenated along tokens; None for the root."""
        parts: list[torch.Tensor] = []
        while node.kv is not None:
            parts.append(node.kv)
            assert node.parent is not None
            node = node.parent
        if not parts:
            return None
        return torch.cat(parts[::-1], dim=TOKEN_DIM)

    # --- mutations ---------------------------------------------------------------------------

    def insert(
        self, token_ids: Sequence[int], kv: torch.Tensor, namespace: str = SHARED_NAMESPACE
    ) -> RadixNode:
        """Cache `kv` (covering exactly `token_ids`) in `namespace`; returns the node that ends
        at the last token.

        Tokens already cached keep their existing KV; only the new suffix is stored (as a copy,
        so the caller's tensor can be freed).
        """
        if kv.shape[TOKEN_DIM] != len(token_ids):
            raise ValueError(f"kv covers {kv.shape[TOKEN_DIM]} tokens, token_ids has {len(token_ids)}")
        return self.insert_new(token_ids, lambda start: kv[:, :, :, start:, :], namespace)

    def insert_new(
        self,
        token_ids: Sequence[int],
        kv_after: Callable[[int], torch.Tensor],
        namespace: str = SHARED_NAMESPACE,
    ) -> RadixNode:
        """`insert`, asking `kv_after(k)` for the KV of `token_ids[k:]` only once the first `k`
        tokens are found cached (and not at all when every token is): a sequence that extends a
        long cached prompt by a few tokens then copies out those few, not the prompt again."""
        self._roots.setdefault(namespace, _new_root())
        match = self.match_prefix(token_ids, namespace)
        if match.num_tokens == len(token_ids):
            return match.node
        suffix = tuple(token_ids[match.num_tokens :])
        kv = kv_after(match.num_tokens)
        if kv.shape[TOKEN_DIM] != len(suffix):
            raise ValueError(
                f"kv_after({match.num_tokens}) covers {kv.shape[TOKEN_DIM]} tokens, not {len(suffix)}"
            )
        node = RadixNode(tokens=suffix, kv=kv.clone(), parent=match.node, last_access=next(self._clock))
        match.node.children[suffix[0]] = node
        self.num_nodes += 1
        self.num_tokens += len(suffix)
        self.num_bytes += node.num_bytes
        return node

    def lock(self, node: RadixNode) -> None:
        while node.parent is not None:  # roots (parent None) are never locked nor evicted
            node.lock_ref += 1
            self.num_locked += node.lock_ref == 1
            node = node.parent

    def unlock(self, node: RadixNode) -> None:
        while node.parent is not None:
            if node.lock_ref <= 0:
                raise RuntimeError("unlock without a matching lock")
            node.lock_ref -= 1
            self.num_locked -= node.lock_ref == 0
            node = node.parent

    def evict_to_capacity(self) -> int:
        """Evict unlocked leaves, least recently used first, until within capacity."""
        return self.evict(self.num_bytes - self.capacity_bytes)

    def evict(self, num_bytes: int) -> int:
        """Free at least `num_bytes` if unlocked leaves allow; returns the number of nodes evicted."""
        evicted = 0
        while num_bytes > 0:
            leaf = self._lru_unlocked_leaf()
            if leaf is None:
                break
            num_bytes -= leaf.num_bytes
            self._remove_leaf(leaf)
            evicted += 1
        return evicted

    # --- internals ---------------------------------------------------------------------------

    def _split(self, child: RadixNode, at: int) -> RadixNode:
        """Cut `child`'s edge after `at` tokens; returns the new upper node (ends at the cut)."""
        assert child.kv is not None and child.parent is not None and 0 < at < len(child.tokens)
        upper = RadixNode(
            tokens=child.tokens[:at],
            kv=child.kv[:, :, :, :at, :].clone(),
            parent=child.parent,
            lock_ref=child.lock_ref,  # every lock through child also passes through upper
            last_access=child.last_access,
        )
        child.parent.children[upper.tokens[0]] = upper
        self.num_locked += upper.lock_ref > 0
        child.tokens = child.tokens[at:]
        child.kv = child.kv[:, :, :, at:, :].clone()
        child.parent = upper
        upper.children[child.tokens[0]] = child
        self.num_nodes += 1
        return upper

    def _drop_empty_namespace(self, root: RadixNode) -> None:
        if root is not self.root:
            self._roots = {name: r for name, r in self._roots.items() if r is not root}

    def _nodes(self) -> list[RadixNode]:
        out, stack = [], [child for root in self._roots.values() for child in root.children.values()]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out

    def _lru_unlocked_leaf(self) -> RadixNode | None:
        leaves = [n for n in self._nodes() if not n.children and n.lock_ref == 0]
        return min(leaves, key=lambda n: n.last_access, default=None)

    def _remove_leaf(self, leaf: RadixNode) -> None:
        assert leaf.parent is not None
        del leaf.parent.children[leaf.tokens[0]]
        if not leaf.parent.children and leaf.parent.parent is None:  # a root, now empty
            self._drop_empty_namespace(leaf.parent)
        self.num_nodes -= 1
        self.num_tokens -= len(leaf.tokens)
        self.num_bytes -= leaf.num_bytes
        self.num_evictions += 1
        leaf.kv = None


def _new_root() -> RadixNode:
    return RadixNode(tokens=(), kv=None, parent=None, lock_ref=1)  # a root is never evicted


def _common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
