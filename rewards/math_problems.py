"""Arithmetic word problems with known answers: the `math` task's workload, generated here.

A second workload beside Countdown, for a pretrained chat model the project did not train
(SmolLM2-135M-Instruct): shopping totals, change, rates, fair shares and a few multi-step mixes,
one to three operations on small whole numbers, so a 135M model solves some and search has
room to help. Every problem keeps the arithmetic that answers it (`expression`, over the numbers
in its question) beside the answer each template computes, so a test can check one against the
other. The prompt asks for steps separated by blank lines (the `math` task's steps) and the final
answer in `\\boxed{}` (its answer).

Problems are drawn from a seed. `DEV_SEED` is the held-out dev split; any other seed skips the
questions of the dev split's first `NUM_DEV_EXCLUDED` problems, so no dev problem is in another
split (ask the dev split for at most that many).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from rewards.math_answer import verify_math_answer

DEV_SEED = 5150
"""Seed of the held-out dev split; tuning and training sets use any other seed."""
NUM_DEV_EXCLUDED = 1000
"""Other splits never contain a question of the first this-many dev problems."""
INSTRUCTION = (
    "Solve the problem step by step. Put a blank line between the steps, and end with the final "
    "answer as a number in \\boxed{}."
)
EXAMPLE = (
    "Example problem: Tom has 3 bags with 4 apples in each bag. He eats 2 apples. "
    "How many apples does Tom have left?\n\n"
    "Example solution:\nTom has 3 * 4 = 12 apples.\n\n"
    "After eating 2, he has 12 - 2 = 10 apples.\n\n"
    "The answer is \\boxed{10}."
)
"""One worked example in the prompt: asked only in words, SmolLM2-135M-Instruct boxed none of 8
answers (greedy); with the example it boxes some."""
NAMES = ("Ava", "Ben", "Mia", "Sam", "Leo", "Zoe", "Max", "Lily", "Noah", "Emma", "Omar", "Nina")

Numbers = dict[str, int]


@dataclass(frozen=True)
class WordProblem:
    """One question, the arithmetic that answers it, and that answer (a whole number)."""

    template: str
    question: str
    expression: str
    """The answer's arithmetic over the question's numbers, e.g. `(12+6)/3`."""
    answer: int

    @property
    def num_steps(self) -> int:
        """One step per operation in `expression`."""
        return sum(self.expression.count(op) for op in "+-*/")


@dataclass(frozen=True)
class Template:
    """A kind of problem: its wording and arithmetic as format strings over drawn numbers (and
    `name`), and the answer computed directly from the numbers."""

    name: str
    text: str
    expression: str
    answer: Callable[[Numbers], int]
    draw: Callable[[random.Random], Numbers]

    def build(self, numbers: Numbers, person: str) -> WordProblem:
        return WordProblem(
            template=self.name,
            question=self.text.format(name=person, **numbers),
            expression=self.expression.format(**numbers),
            answer=self.answer(numbers),
        )


def _draw_change(rng: random.Random) -> Numbers:
    count, price = rng.randint(2, 6), rng.randint(2, 9)
    return {"count": count, "price": price, "money": count * price + rng.randint(1, 20)}


def _draw_share(rng: random.Random) -> Numbers:
    people, each = rng.randint(2, 9), rng.randint(2, 12)
    return {"people": people, "total": people * each}


def _draw_bags(rng: random.Random) -> Numbers:
    groups = rng.randint(2, 6)
    total = groups * rng.randint(3, 12)
    more = rng.randint(1, total - 1)
    return {"groups": groups, "have": total - more, "more": more}


def _draw_bakery(rng: random.Random) -> Numbers:
    trays, per = rng.randint(2, 6), rng.randint(3, 12)
    return {"trays": trays, "per": per, "sold": rng.randint(1, trays * per - 1)}


def _draw_marbles(rng: random.Random) -> Numbers:
    start = rng.randint(10, 60)
    return {"start": start, "lost": rng.randint(1, start - 1), "found": rng.randint(1, 30)}


def _draw_pencils(rng: random.Random) -> Numbers:
    classes, boxes, per = rng.randint(2, 5), rng.randint(2, 6), rng.randint(4, 10)
    loose = (-boxes * per) % classes + classes * rng.randint(0, 3)
    return {"classes": classes, "boxes": boxes, "per": per, "loose": loose or classes}


TEMPLATES: tuple[Template, ...] = (
    Template(
        "shopping",
        "{name} buys {count} notebooks that cost {price} dollars each. How many dollars does {name} spend?",
        "{count}*{price}",
        lambda n: n["count"] * n["price"],
        lambda rng: {"count": rng.randint(2, 9), "price": rng.randint(2, 9)},
    ),
    Template(
        "shopping_total",
        "{name} buys {count} pencils at {price} dollars each and a backpack for {extra} dollars. "
        "How many dollars does {name} spend in all?",
        "{count}*{price}+{extra}",
        lambda n: n["count"] * n["price"] + n["extra"],
        lambda rng: {"count": rng.randint(2, 9), "price": rng.randint(2, 9), "extra": rng.randint(5, 30)},
    ),
    Template(
        "two_items",
        "{name} buys {count_a} apples at {price_a} dollars each and {count_b} pears at {price_b} "
        "dollars each. How many dollars does {name} spend?",
        "{count_a}*{price_a}+{count_b}*{price_b}",
        lambda n: n["count_a"] * n["price_a"] + n["count_b"] * n["price_b"],
        lambda rng: {k: rng.randint(2, 7) for k in ("count_a", "price_a", "count_b", "price_b")},
    ),
    Template(
        "change",
        "{name} has {money} dollars and buys {count} books that cost {price} dollars each. "
        "How many dollars does {name} have left?",
        "{money}-{count}*{price}",
        lambda n: n["money"] - n["count"] * n["price"],
        _draw_change,
    ),
    Template(
        "rate",
        "{name}'s machine makes {rate} toys every hour. How many toys does it make in {hours} hours?",
        "{rate}*{hours}",
        lambda n: n["rate"] * n["hours"],
        lambda rng: {"rate": rng.randint(2, 15), "hours": rng.randint(2, 9)},
    ),
    Template(
        "trip",
        "{name} drives {speed} miles per hour for {hours} hours and then {extra} more miles. "
        "How many miles does {name} drive in total?",
        "{speed}*{hours}+{extra}",
        lambda n: n["speed"] * n["hours"] + n["extra"],
        lambda rng: {
            "speed": 5 * rng.randint(2, 12),
            "hours": rng.randint(2, 5),
            "extra": rng.randint(3, 40),
        },
    ),
    Template(
        "share",
        "{name} shares {total} stickers equally among {people} friends. "
        "How many stickers does each friend get?",
        "{total}/{people}",
        lambda n: n["total"] // n["people"],
        _draw_share,
    ),
    Template(
        "bags",
        "{name} has {have} marbles and wins {more} more. {name} puts all the marbles into {groups} "
        "bags with the same number in each. How many marbles are in each bag?",
        "({have}+{more})/{groups}",
        lambda n: (n["have"] + n["more"]) // n["groups"],
        _draw_bags,
    ),
    Template(
        "bakery",
        "A baker makes {trays} trays of {per} cookies for {name}'s party and {sold} cookies are "
        "eaten. How many cookies are left?",
        "{trays}*{per}-{sold}",
        lambda n: n["trays"] * n["per"] - n["sold"],
        _draw_bakery,
    ),
    Template(
        "marbles",
        "{name} had {start} marbles, gave away {lost} and then found {found} more. "
        "How many marbles does {name} have now?",
        "{start}-{lost}+{found}",
        lambda n: n["start"] - n["lost"] + n["found"],
        _draw_marbles,
    ),
    Template(
        "pencils",
        "{name}'s school buys {boxes} boxes of {per} pencils and {loose} loose pencils, and gives "
        "them out equally to {classes} classes. How many pencils does each class get?",
        "({boxes}*{per}+{loose})/{classes}",
        lambda n: (n["boxes"] * n["per"] + n["loose"]) // n["classes"],
        _draw_pencils,
    ),
)


def sample_problem(rng: random.Random) -> WordProblem:
    """A template uniformly, then its numbers and a name."""
    template = rng.choice(TEMPLATES)
    numbers = template.draw(rng)
    return template.build(numbers, rng.choice(NAMES))


def generate_problems(seed: int, num_problems: int) -> list[WordProblem]:
    """`num_problems` problems, identical for identical seeds; outside the dev split, never one
    of the dev split's first `NUM_DEV_EXCLUDED` questions."""
    rng = random.Random(seed)
    if seed == DEV_SEED:
        return [sample_problem(rng) for _ in range(num_problems)]
    dev = {p.question for p in generate_problems(DEV_SEED, NUM_DEV_EXCLUDED)}
    problems: list[WordProblem] = []
    while len(problems) < num_problems:
        problem = sample_problem(rng)
        if problem.question not in dev:
            problems.append(problem)
    return problems


def format_prompt(problem: WordProblem) -> str:
    """The user message: the instruction, the worked example, then the question."""
    return f"{INSTRUCTION}\n\n{EXAMPLE}\n\nProblem: {problem.question}"


def answer_check(problems: list[WordProblem]) -> Callable[[str, str], bool | None]:
    """(user message, reply) -> whether the reply's last `\\boxed{}` equals that problem's gold
    answer by math-verify (None for a message that is none of `problems`): the bench's grader,
    which never guides a search."""
    gold = {format_prompt(p): str(p.answer) for p in problems}

    def check(message: str, reply: str) -> bool | None:
        return verify_math_answer(reply, gold[message]) if message in gold else None

    return check
