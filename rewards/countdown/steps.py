"""The reply text format: step lines like `79+17=96 (54,4,96)` and a final `answer: EXPR`.

A reply is its step lines and then the answer line, joined by newlines, with no trailing
newline (the model ends it with EOS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.countdown.solver import Route, Step

ANSWER_PREFIX = "answer: "
_STEP_RE = re.compile(r"(\d+)([+\-*/])(\d+)=(\d+) \((\d+(?:,\d+)*)\)")


@dataclass(frozen=True)
class ReplyParts:
    """A reply split into its step lines and its answer line (None when missing)."""

    step_lines: list[str]
    answer_line: str | None


def format_step(step: Step) -> str:
    """`left op right=result (remaining)`."""
    remaining = ",".join(str(n) for n in step.remaining)
    return f"{step.left}{step.op}{step.right}={step.result} ({remaining})"


def parse_step(line: str) -> Step:
    """Parse one step line as written (no arithmetic check); ValueError if malformed."""
    match = _STEP_RE.fullmatch(line.strip())
    if match is None:
        raise ValueError(f"malformed step: {line!r}")
    left, op, right, result, remaining = match.groups()
    numbers = tuple(int(n) for n in remaining.split(","))
    return Step(int(left), op, int(right), int(result), numbers)


def format_answer(expression: str) -> str:
    """The answer line for an expression."""
    return f"{ANSWER_PREFIX}{expression}"


def format_reply(route: Route) -> str:
    """The full reply text for a solver route."""
    lines = [format_step(step) for step in route.steps] + [format_answer(route.expression)]
    return "\n".join(lines)


def split_reply(reply: str) -> ReplyParts:
    """Step lines are everything before the first answer line; blank lines are dropped."""
    lines = [line for line in reply.strip("\n").split("\n") if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith(ANSWER_PREFIX.rstrip()):
            return ReplyParts(step_lines=lines[:index], answer_line=line)
    return ReplyParts(step_lines=lines, answer_line=None)
