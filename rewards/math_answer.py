"""Outcome verifier for math replies: is the last `\\boxed{...}` answer equal to the gold answer?

Equality is `math-verify`'s (sympy-backed), so `\\frac{1}{2}`, `0.5` and `1/2` all match. Only
the last box counts, as math prompts ask for the final answer within `\\boxed{}` and replies
often box an intermediate result first. math-verify bounds parsing and comparison with
`signal.alarm`, which works only on the main thread; elsewhere (e.g. `asyncio.to_thread`) the
check runs without that bound.
"""

from __future__ import annotations

import threading

from math_verify import parse, verify

BOXED = "\\boxed{"
TIMEOUT_SECONDS = 5
"""math-verify's own default bound on parsing and on comparing one answer."""


def last_boxed_answer(reply: str) -> str | None:
    """The contents of the last `\\boxed{...}` in `reply`; None if there is none or it never closes."""
    start = reply.rfind(BOXED)
    if start < 0:
        return None
    depth = 1
    for index in range(start + len(BOXED), len(reply)):
        depth += {"{": 1, "}": -1}.get(reply[index], 0)
        if depth == 0:
            return reply[start + len(BOXED) : index]
    return None


def _timeout_seconds() -> int | None:
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


def verify_math_answer(reply: str, gold: str) -> bool:
    """Whether the reply's last boxed answer equals `gold` (plain, `$...$` or boxed LaTeX).

    A reply without a (non-empty, closed) box is wrong. A gold answer math-verify cannot read
    at all is bad data, so it raises ValueError rather than marking every reply wrong.
    """
    timeout = _timeout_seconds()
    is_latex = "$" in gold or BOXED in gold
    gold_parsed = parse(gold if is_latex else f"${gold}$", parsing_timeout=timeout)  # type: ignore[arg-type]
    if not gold_parsed:
        raise ValueError(f"math-verify cannot parse the gold answer {gold!r}")
    answer = last_boxed_answer(reply)
    if answer is None or not answer.strip():
        return False
    predicted = parse(f"${answer}$", parsing_timeout=timeout)  # type: ignore[arg-type]
    return bool(predicted) and bool(verify(gold_parsed, predicted, timeout_seconds=timeout))
