"""`bench.profile_top`: self and cumulative counts from py-spy's collapsed stacks."""

from __future__ import annotations

import pytest

from bench.profile_top import markdown, parse_collapsed, top_rows

STACKS = [
    "thread (0x1);run (worker.py);_decode_step (worker.py);forward (llama.py) 6",
    "thread (0x1);run (worker.py);_append (worker.py);decode (tokenizer.py) 3",
    "",
    "thread (0x2);select (asyncio.py) 1",
    "thread (0x1);f (r.py);f (r.py) 2",  # recursion counts once in cumulative
]


def test_self_is_the_leaf_and_cumulative_counts_each_stack_once() -> None:
    profile = parse_collapsed(STACKS)
    assert profile.total == 12
    assert profile.self_counts["forward (llama.py)"] == 6
    assert profile.self_counts["run (worker.py)"] == 0
    assert profile.cumulative_counts["run (worker.py)"] == 9
    assert profile.cumulative_counts["thread (0x1)"] == 11
    assert profile.cumulative_counts["f (r.py)"] == 2
    assert profile.self_counts["f (r.py)"] == 2


def test_top_rows_are_ordered_with_percentages() -> None:
    profile = parse_collapsed(STACKS)
    rows = top_rows(profile.cumulative_counts, profile.total, 2)
    assert rows == [("thread (0x1)", 11, pytest.approx(100 * 11 / 12)), ("run (worker.py)", 9, 75.0)]
    assert "| 50.0 | 6 | `forward (llama.py)` |" in markdown(profile, 3)


@pytest.mark.parametrize("line", ["no count here", "12"])
def test_parse_collapsed_refuses_other_text(line: str) -> None:
    with pytest.raises(ValueError, match="not a collapsed stack line"):
        parse_collapsed([line])


def test_excluded_stacks_are_not_counted() -> None:
    profile = parse_collapsed(STACKS, exclude=("decode (tok", "select"))
    assert profile.total == 8
    assert profile.cumulative_counts["run (worker.py)"] == 6
    assert "select (asyncio.py)" not in profile.self_counts
