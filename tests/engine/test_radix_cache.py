"""The radix tree on small CPU tensors: matching, splitting, KV slices, locks and LRU eviction."""

import pytest
import torch

from engine.radix_cache import RadixCache

LAYERS, HEADS, DIM = 2, 1, 4
BYTES_PER_TOKEN = LAYERS * 2 * HEADS * DIM * 4


def kv_for(tokens: list[int]) -> torch.Tensor:
    """KV whose every entry equals its token id, so slices can be checked by value."""
    t = torch.tensor(tokens, dtype=torch.float32).view(1, 1, 1, -1, 1)
    return t.expand(LAYERS, 2, HEADS, len(tokens), DIM).clone()


def test_insert_then_match_returns_the_exact_prefix_kv():
    cache = RadixCache(10**6)
    cache.insert([1, 2, 3, 4], kv_for([1, 2, 3, 4]))
    match = cache.match_prefix([1, 2, 3, 9])
    assert match.num_tokens == 3
    kv = cache.gather_kv(match.node)
    assert kv is not None and kv[0, 0, 0, :, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("inserted", "query", "expected"),
    [
        ([[1, 2, 3]], [1, 2, 3], 3),
        ([[1, 2, 3]], [1, 2], 2),
        ([[1, 2, 3]], [2, 3], 0),
        ([[1, 2, 3], [1, 2, 7, 8]], [1, 2, 7, 8, 9], 4),
        ([[1, 2, 3], [1, 2, 7, 8]], [1, 2, 3, 8], 3),
    ],
)
def test_longest_prefix(inserted, query, expected):
    cache = RadixCache(10**6)
    for tokens in inserted:
        cache.insert(tokens, kv_for(tokens))
    match = cache.match_prefix(query)
    assert match.num_tokens == expected
    kv = cache.gather_kv(match.node)
    got = [] if kv is None else kv[0, 1, 0, :, 0].tolist()
    assert got == query[:expected]


def test_shared_prefix_is_stored_once():
    cache = RadixCache(10**6)
    cache.insert([1, 2, 3, 4], kv_for([1, 2, 3, 4]))
    cache.insert([1, 2, 5, 6], kv_for([1, 2, 5, 6]))
    assert cache.num_tokens == 6  # 1 2 | 3 4 | 5 6
    assert cache.num_bytes == 6 * BYTES_PER_TOKEN
    assert cache.num_nodes == 3


def test_insert_rejects_kv_of_the_wrong_length():
    with pytest.raises(ValueError, match="kv covers"):
        RadixCache(10**6).insert([1, 2], kv_for([1]))


def test_insert_new_asks_only_for_the_kv_after_the_cached_prefix():
    cache = RadixCache(10**6)
    cache.insert([1, 2, 3], kv_for([1, 2, 3]))
    asked: list[int] = []

    def kv_after(start: int) -> torch.Tensor:
        asked.append(start)
        return kv_for([1, 2, 3, 4, 5])[:, :, :, start:]

    node = cache.insert_new([1, 2, 3, 4, 5], kv_after)
    kv = cache.gather_kv(node)
    assert kv is not None and kv[0, 0, 0, :, 0].tolist() == [1, 2, 3, 4, 5]
    assert asked == [3] and cache.num_tokens == 5
    assert cache.insert_new([1, 2, 3, 4], kv_after) is not None and asked == [3]  # all cached: no call
    with pytest.raises(ValueError, match="covers"):
        cache.insert_new([1, 2, 3, 4, 5, 6], lambda start: kv_for([9, 9]))


def test_locked_path_survives_eviction_and_lru_goes_first():
    cache = RadixCache(capacity_bytes=4 * BYTES_PER_TOKEN)
    old = cache.insert([1, 2], kv_for([1, 2]))
    kept = cache.insert([3, 4], kv_for([3, 4]))
    cache.lock(kept)
    cache.insert([5, 6], kv_for([5, 6]))  # now 6 tokens, capacity 4
    assert cache.evict_to_capacity() == 1
    assert cache.match_prefix([1, 2]).num_tokens == 0  # the least recently used went
    assert cache.match_prefix([3, 4]).num_tokens == 2
    assert cache.num_locked == 1
    cache.unlock(kept)
    assert cache.num_locked == 0
    assert old.kv is None


def test_eviction_stops_when_everything_left_is_locked():
    cache = RadixCache(capacity_bytes=1)
    node = cache.insert([1, 2, 3], kv_for([1, 2, 3]))
    cache.lock(node)
    assert cache.evict_to_capacity() == 0
    assert cache.num_tokens == 3


def test_split_keeps_locks_on_both_halves():
    cache = RadixCache(10**6)
    node = cache.insert([1, 2, 3, 4], kv_for([1, 2, 3, 4]))
    cache.lock(node)
    cache.match_prefix([1, 2])  # splits the locked edge
    assert cache.num_locked == 2
    cache.unlock(node)
    assert cache.num_locked == 0


def test_unlock_without_lock_is_an_error():
    cache = RadixCache(10**6)
    node = cache.insert([1], kv_for([1]))
    with pytest.raises(RuntimeError):
        cache.unlock(node)


def test_namespaces_never_share_a_prefix():
    cache = RadixCache(10**6)
    cache.insert([1, 2, 3], kv_for([1, 2, 3]), namespace="alice")
    assert cache.match_prefix([1, 2, 3], namespace="alice").num_tokens == 3
    assert cache.match_prefix([1, 2, 3], namespace="bob").num_tokens == 0
    assert cache.match_prefix([1, 2, 3]).num_tokens == 0  # the shared namespace is one more
    cache.insert([1, 2, 9], kv_for([1, 2, 9]), namespace="bob")
    assert cache.num_tokens == 6 and cache.num_nodes == 2  # stored once per namespace


def test_namespace_locks_and_eviction_release_everything():
    cache = RadixCache(3 * BYTES_PER_TOKEN)
    node = cache.insert([1, 2, 3], kv_for([1, 2, 3]), namespace="alice")
    cache.lock(node)
    cache.insert([4, 5], kv_for([4, 5]), namespace="bob")
    cache.evict_to_capacity()
    assert cache.match_prefix([1, 2, 3], namespace="alice").num_tokens == 3  # locked: kept
    assert cache.match_prefix([4, 5], namespace="bob").num_tokens == 0  # evicted
    cache.unlock(node)
    assert cache.num_locked == 0
    cache.evict(10**6)
    assert (cache.num_nodes, cache.num_tokens, cache.num_bytes) == (0, 0, 0)
    assert cache.num_namespaces == 0  # an emptied namespace leaves no root behind
