"""Countdown-4 as a task: reach the target with each number once (rewards.countdown).

A step is a line (`79+17=96 (54,4,96)`), the answer is the `answer: EXPR` line, and two answers
agree when their expressions evaluate to the same value. The verifier is exact, and so is the
check of every step, so Countdown is also a task the learner can practise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rewards.countdown.expression import evaluate
from rewards.countdown.problems import (
    DEV_SEED,
    format_prompt,
    generate_problems,
    parse_prompt,
    sample_problem,
)
from rewards.countdown.solver import solve_routes
from rewards.countdown.steps import ANSWER_PREFIX, format_reply, split_reply
from rewards.countdown.verifier import first_error_index, label_steps, verify_reply
from rewards.tasks.protocol import LINE_END, split_on


@dataclass(frozen=True)
class CountdownTask:
    """Countdown-4 (`TrainableTask`)."""

    name: str = "countdown"
    step_end: str = LINE_END
    step_tokens: int = 48  # a step line is about 20 tokens
    num_dev_excluded: int = 1000
    """Training problems never coincide with the first this-many dev problems."""

    def split_steps(self, reply: str) -> list[str]:
        return split_on(reply, self.step_end)

    def answer_key(self, reply: str) -> str | None:
        """The value the answer's expression evaluates to, else the expression's text."""
        answer = split_reply(reply).answer_line
        if answer is None:
            return None
        expression = answer[len(ANSWER_PREFIX) :].strip()
        try:
            return f"value={evaluate(expression).value}"
        except ValueError:
            return f"text={expression}"

    def same_answer(self, key: str, other: str) -> bool:
        return key == other

    def verify(self, message: str, reply: str) -> bool | None:
        try:
            problem = parse_prompt(message)
        except ValueError:
            return None
        return verify_reply(problem, reply)

    def training_messages(self, seed: int, num_problems: int) -> list[str]:
        if seed == DEV_SEED:
            raise ValueError(f"seed {DEV_SEED} is the dev split's; training needs another")
        dev = set(generate_problems(DEV_SEED, self.num_dev_excluded))
        rng = random.Random(seed)
        messages: list[str] = []
        while len(messages) < num_problems:
            problem = sample_problem(rng)
            if problem not in dev:
                messages.append(format_prompt(problem))
        return messages

    def dev_messages(self, num_problems: int) -> list[str]:
        return [format_prompt(p) for p in generate_problems(DEV_SEED, num_problems)]

    def is_sound(self, message: str, reply: str) -> bool:
        if not self.verify(message, reply):
            return False
        return first_error_index(label_steps(parse_prompt(message), reply)) is None

    def sound_rewrite(self, message: str, reply: str) -> str | None:
        """The solver's steps for the reply's answer expression (one route builds it)."""
        answer = split_reply(reply).answer_line
        if answer is None or not self.verify(message, reply):
            return None
        expression = answer[len(ANSWER_PREFIX) :].replace(" ", "")
        problem = parse_prompt(message)
        for route in solve_routes(problem.numbers, problem.target):
            if route.expression == expression:
                return format_reply(route)
        return None

    def reference_pairs(self, seed: int, num_problems: int) -> list[tuple[str, str]]:
        """One solver route per problem, chosen at random (the bundled policy's training data)."""
        rng = random.Random(seed)
        references = self.reference_replies(seed, num_problems)
        return [(message, rng.choice(replies)) for message, replies in references]

    def reference_replies(self, seed: int, num_problems: int) -> list[tuple[str, list[str]]]:
        """Every winning route of each problem, as replies, in the solver's order."""
        replies: list[tuple[str, list[str]]] = []
        for message in self.training_messages(seed, num_problems):
            problem = parse_prompt(message)
            routes = solve_routes(problem.numbers, problem.target)
            replies.append((message, [format_reply(route) for route in routes]))
        return replies
