"""What search and learning need to know about a kind of prompt, and nothing about a model.

Search asks a task where a step ends (its stop string), what answer a reply gives and whether two
answers agree (so replies can vote), and, where the task has one, the exact outcome of a reply.
The learner also needs problems to practise on and a held-out dev split: `TrainableTask`. A task
is pure Python (no torch), so importing the search API never loads a model.
"""

from __future__ import annotations

from typing import Protocol

LINE_END = "\n"
"""Steps that are lines (Countdown's `a+b=c (rest)` steps)."""
PARAGRAPH_END = "\n\n"
"""Steps that are paragraphs: how chat and math models separate their reasoning steps (the
convention PRMs such as Qwen2.5-Math-PRM and search-and-learn's beam search use)."""


class Task(Protocol):
    """A kind of prompt as search sees it: steps, answers, and an optional exact verifier."""

    @property
    def name(self) -> str: ...

    @property
    def step_end(self) -> str:
        """The text that ends one step: the stop string a step expansion samples up to."""
        ...

    @property
    def step_tokens(self) -> int:
        """Tokens a step of this task may take when a search does not say (`max_step_tokens`):
        enough for a whole step, since a step cut short is scored as if it were whole."""
        ...

    def split_steps(self, reply: str) -> list[str]:
        """A whole reply's steps, as a step expansion would have produced them."""
        ...

    def answer_key(self, reply: str) -> str | None:
        """The answer a reply votes for, normalised (so that `25+50` and `50+25` agree where the
        task can tell); None when the reply gives no answer."""
        ...

    def same_answer(self, key: str, other: str) -> bool:
        """Whether two answer keys are the same answer (equal keys always are)."""
        ...

    def verify(self, message: str, reply: str) -> bool | None:
        """The exact outcome of `reply`; None when `message` states no problem the task can check."""
        ...


class TrainableTask(Task, Protocol):
    """A task the learner can practise: seeded problems, a fixed dev split, sound steps."""

    def training_messages(self, seed: int, num_problems: int) -> list[str]:
        """Seeded problems as user messages, never one of the dev split's."""
        ...

    def dev_messages(self, num_problems: int) -> list[str]:
        """The first `num_problems` of the fixed held-out dev split."""
        ...

    def is_sound(self, message: str, reply: str) -> bool:
        """A verified reply whose every step is right too (a right answer after wrong steps
        teaches the wrong steps); tasks that cannot check steps return `verify`'s outcome."""
        ...

    def reference_pairs(self, seed: int, num_problems: int) -> list[tuple[str, str]]:
        """(message, reply) pairs from the task's own reference solutions, never a dev problem:
        the kind of data the policy was first trained on, replayed beside what it learns from
        its searches so that a short fine-tune does not drift from it ([] where there is none)."""
        ...

    def reference_replies(self, seed: int, num_problems: int) -> list[tuple[str, list[str]]]:
        """(message, every reference reply) for the problems `reference_pairs` draws from, so
        the learner can replay the one its policy prefers (`trainer.preferred_routes`)."""
        ...

    def sound_rewrite(self, message: str, reply: str) -> str | None:
        """A sound reply that reaches `reply`'s verified answer, where the task can write one.

        Search often finds a right answer whose steps hold a slip (about half the bundled
        policy's verified replies); the route is worth learning, the slip is not. None where
        `reply` is not verified or the task cannot rewrite its steps."""
        ...


def split_on(reply: str, step_end: str) -> list[str]:
    """The non-blank pieces of `reply` between `step_end`s, without their surrounding newlines."""
    return [piece.strip("\n") for piece in reply.split(step_end) if piece.strip()]
