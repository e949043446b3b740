"""`bench.llama_peer.first_divergence`: where two engines' greedy tokens part ways."""

from __future__ import annotations

import pytest

from bench.llama_peer import first_divergence


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ([1, 2, 3], [1, 2, 3], None),
        ([1, 2, 3], [1, 9, 3], 1),
        ([5], [6], 0),
        ([1, 2], [1, 2, 3], 2),  # one stopped early: they differ where it ended
        ([], [], None),
    ],
)
def test_first_divergence(ours: list[int], theirs: list[int], expected: int | None) -> None:
    assert first_divergence(ours, theirs) == expected
