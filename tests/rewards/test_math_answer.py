"""The math outcome verifier: last boxed answer against a gold answer, via math-verify."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from rewards.math_answer import last_boxed_answer, verify_math_answer


@pytest.mark.parametrize(
    ("reply", "gold", "expected"),
    [
        ("So the answer is \\boxed{\\frac{1}{2}}.", "0.5", True),
        ("So the answer is \\boxed{\\frac{1}{2}}.", "1/3", False),
        ("So the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", True),
        ("So the answer is \\boxed{\\frac{1}{2}}.", "$\\frac{1}{2}$", True),
        ("$\\boxed{0.5}$", "\\boxed{\\frac{2}{4}}", True),
        ("The answer is 0.5.", "0.5", False),
        ("", "1", False),
        ("\\boxed{}", "1", False),
        ("\\boxed{  }", "1", False),
        ("unclosed \\boxed{\\frac{1}{2}", "0.5", False),
        ("first \\boxed{3}, then correcting: \\boxed{4}", "4", True),
        ("first \\boxed{3}, then correcting: \\boxed{4}", "3", False),
        ("\\boxed{\\sqrt{2}}", "\\sqrt{2}", True),
        ("\\boxed{\\sqrt{2}}", "1.41", False),
        ("\\boxed{\\frac{\\pi}{2}}", "\\pi/2", True),
        ("\\boxed{10^{3}}", "1000", True),
        ("\\boxed{1,000}", "1000", True),
        ("\\boxed{(1, 2)}", "(1,2)", True),
        ("\\boxed{x = 2}", "x=2", True),
        ("\\boxed{-7}", "7", False),
    ],
)
def test_verify_math_answer(reply: str, gold: str, expected: bool) -> None:
    assert verify_math_answer(reply, gold) is expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("a \\boxed{\\frac{1}{2}} b", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{{2}}", "{2}"),
        ("no box", None),
        ("\\boxed{open", None),
    ],
)
def test_last_boxed_answer(reply: str, expected: str | None) -> None:
    assert last_boxed_answer(reply) == expected


def test_unreadable_gold_is_an_error() -> None:
    with pytest.raises(ValueError, match="gold"):
        verify_math_answer("\\boxed{1}", "")


def test_works_off_the_main_thread() -> None:
    """math-verify's signal-based timeout would raise in a worker thread; we run without it there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        right = pool.submit(verify_math_answer, "\\boxed{\\frac{1}{2}}", "0.5")
        wrong = pool.submit(verify_math_answer, "\\boxed{\\frac{1}{2}}", "1/3")
        assert right.result() is True
        assert wrong.result() is False
