"""A tiny safe parser/evaluator for answer expressions (never `eval`).

It accepts ordinary precedence, so fully parenthesised answers and looser ones both parse,
and it enforces the Countdown rule that every intermediate result is a positive integer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.countdown.solver import apply_operator

_TOKEN_RE = re.compile(r"\s*(\d+|[+\-*/()])")


@dataclass(frozen=True)
class Evaluation:
    """The value of an expression and the numbers it used, in order of appearance."""

    value: int
    leaves: tuple[int, ...]


def tokenize(text: str) -> list[str]:
    """Split into numbers, operators and parentheses; ValueError on any other character."""
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise ValueError(f"unexpected character at {position} in {text!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the token list: expr := term (+|- term)*, term := factor (*|/ factor)*."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.leaves: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ValueError("unexpected end of expression")
        self.index += 1
        return token

    def binary(self, operand: int, ops: str, next_level: str) -> int:
        while (token := self.peek()) is not None and token in ops:
            self.take()
            right = getattr(self, next_level)()
            result = apply_operator(operand, token, right)
            if result is None:
                raise ValueError(f"{operand}{token}{right} is not a positive integer")
            operand = result
        return operand

    def expr(self) -> int:
        return self.binary(self.term(), "+-", "term")

    def term(self) -> int:
        return self.binary(self.factor(), "*/", "factor")

    def factor(self) -> int:
        token = self.take()
        if token == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("missing ')'")
            return value
        if not token.isdigit():
            raise ValueError(f"expected a number, got {token!r}")
        self.leaves.append(int(token))
        return int(token)


def evaluate(text: str) -> Evaluation:
    """Evaluate under Countdown rules; ValueError if malformed or a rule is broken."""
    parser = _Parser(tokenize(text))
    value = parser.expr()
    if parser.peek() is not None:
        raise ValueError(f"trailing tokens in {text!r}")
    return Evaluation(value=value, leaves=tuple(parser.leaves))
