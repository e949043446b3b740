"""The task of a chat model with nothing more known: steps are paragraphs, the answer is the reply.

Replies vote on their normalised text (case, whitespace and the punctuation around it do not
count), so self-consistency picks the reply given most often; there is no verifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.tasks.protocol import PARAGRAPH_END, split_on

_WHITESPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = " .!?,;:\"'`*"


def normalise_text(text: str) -> str:
    """Lower case, single spaces, no punctuation or quotes around it."""
    return _WHITESPACE.sub(" ", text).strip(_EDGE_PUNCTUATION).lower()


@dataclass(frozen=True)
class PlainTask:
    """Any prompt (`Task`)."""

    name: str = "plain"
    step_end: str = PARAGRAPH_END
    step_tokens: int = 128  # a paragraph of prose

    def split_steps(self, reply: str) -> list[str]:
        return split_on(reply, self.step_end)

    def answer_key(self, reply: str) -> str | None:
        return normalise_text(reply) or None

    def same_answer(self, key: str, other: str) -> bool:
        return key == other

    def verify(self, message: str, reply: str) -> bool | None:
        return None
