"""Math word problems as a task: steps are paragraphs, the answer is the last `\\boxed{}`.

Two answers agree when math-verify finds them equal (`\\frac{1}{2}` and `0.5`), so
self-consistency counts equal values, not equal spellings. A user message carries no gold answer,
so there is no verifier here (`rewards.math_answer.verify_math_answer` checks against one).
math-verify is imported on first use: it loads sympy, which search must not pay for up front.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewards.tasks.protocol import PARAGRAPH_END, split_on


@dataclass(frozen=True)
class MathTask:
    """Boxed math answers (`Task`)."""

    name: str = "math"
    step_end: str = PARAGRAPH_END
    step_tokens: int = 128  # a paragraph of working

    def split_steps(self, reply: str) -> list[str]:
        return split_on(reply, self.step_end)

    def answer_key(self, reply: str) -> str | None:
        from rewards.math_answer import last_boxed_answer

        answer = last_boxed_answer(reply)
        return answer.strip() if answer is not None and answer.strip() else None

    def same_answer(self, key: str, other: str) -> bool:
        from rewards.math_answer import same_math_answer

        return same_math_answer(key, other)

    def verify(self, message: str, reply: str) -> bool | None:
        return None
