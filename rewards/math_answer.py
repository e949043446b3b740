"""Math answers: the last `\\boxed{...}` of a reply, and equality by `math-verify` (sympy-backed),
so `\\frac{1}{2}`, `0.5` and `1/2` all match.

Only the last box counts, as math prompts ask for the final answer within `\\boxed{}` and replies
often box an intermediate result first. math-verify bounds parsing and comparison with
`signal.alarm`, which works only on the main thread. Elsewhere (a server's worker threads,
`asyncio.to_thread`) each check runs without the signal, in a daemon thread that is waited on for
the same bound: a check past it counts as no match, and the thread is left to finish on its own
(sympy cannot be interrupted from outside, and a daemon thread never holds up the exit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from math_verify import parse, verify

BOXED = "\\boxed{"
TIMEOUT_SECONDS = 5
"""math-verify's own default bound on parsing and on comparing one answer."""
T = TypeVar("T")


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


def bounded(call: Callable[[int | None], T], default: T) -> T:
    """`call(timeout)` under math-verify's own signal bound on the main thread; elsewhere
    `call(None)` in a daemon thread, `default` if it has not answered within the bound."""
    if threading.current_thread() is threading.main_thread():
        return call(TIMEOUT_SECONDS)
    answers: list[T] = []
    worker = threading.Thread(target=lambda: answers.append(call(None)), daemon=True, name="math-verify")
    worker.start()
    worker.join(TIMEOUT_SECONDS)
    return answers[0] if answers else default


@lru_cache(maxsize=4096)
def parse_answer(text: str) -> tuple[Any, ...]:
    """math-verify's reading of an answer (plain, `$...$` or boxed LaTeX); () if unreadable."""
    latex = text if "$" in text or BOXED in text else f"${text}$"
    parsed: list[Any] = bounded(lambda timeout: parse(latex, parsing_timeout=timeout), [])  # type: ignore[arg-type]
    return tuple(parsed)


def are_equal(gold: tuple[Any, ...], predicted: tuple[Any, ...]) -> bool:
    """math-verify's equality of two parsed answers (False when either is unreadable)."""
    if not gold or not predicted:
        return False
    return bounded(lambda timeout: bool(verify(list(gold), list(predicted), timeout_seconds=timeout)), False)


def same_math_answer(answer: str, other: str) -> bool:
    """Whether two answers (box contents) are the same value: equal text, or math-verify says so."""
    return answer.strip() == other.strip() or are_equal(parse_answer(answer), parse_answer(other))


def verify_math_answer(reply: str, gold: str) -> bool:
    """Whether the reply's last boxed answer equals `gold` (plain, `$...$` or boxed LaTeX).

    A reply without a (non-empty, closed) box is wrong. A gold answer math-verify cannot read
    at all is bad data, so it raises ValueError rather than marking every reply wrong.
    """
    gold_parsed = parse_answer(gold)
    if not gold_parsed:
        raise ValueError(f"math-verify cannot parse the gold answer {gold!r}")
    answer = last_boxed_answer(reply)
    if answer is None or not answer.strip():
        return False
    return are_equal(gold_parsed, parse_answer(answer))
