"""The generated arithmetic word problems: gold answers checked against arithmetic computed apart
from the templates, determinism by seed, a dev split no other split shares, and grading through
the `math` task's answer reading and math-verify."""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction

import pytest

from rewards.math_problems import (
    DEV_SEED,
    NUM_DEV_EXCLUDED,
    TEMPLATES,
    WordProblem,
    answer_check,
    format_prompt,
    generate_problems,
)
from rewards.tasks import get_task

OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def exact_value(expression: str) -> Fraction:
    """`expression` (whole numbers, + - * /, brackets) in exact fractions: a second reading of
    the arithmetic, apart from the templates' own answer functions."""

    def walk(node: ast.expr) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        raise ValueError(f"not plain arithmetic: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval").body)


@pytest.fixture(scope="module")
def dev() -> list[WordProblem]:
    return generate_problems(DEV_SEED, NUM_DEV_EXCLUDED)


def test_every_gold_answer_is_its_questions_arithmetic(dev: list[WordProblem]) -> None:
    for problem in dev + generate_problems(7, 500):
        assert exact_value(problem.expression) == problem.answer > 0, problem
        numbers_asked = re.findall(r"\d+", problem.question)
        assert sorted(re.findall(r"\d+", problem.expression)) == sorted(numbers_asked), problem
        assert 1 <= problem.num_steps <= 3


@pytest.mark.parametrize(
    ("template", "numbers", "question", "answer"),
    [
        ("change", {"money": 30, "count": 3, "price": 7},
         "Mia has 30 dollars and buys 3 books that cost 7 dollars each. "
         "How many dollars does Mia have left?", 9),
        ("bags", {"have": 13, "more": 5, "groups": 3},
         "Mia has 13 marbles and wins 5 more. Mia puts all the marbles into 3 bags with the same "
         "number in each. How many marbles are in each bag?", 6),
        ("pencils", {"boxes": 2, "per": 10, "loose": 4, "classes": 4},
         "Mia's school buys 2 boxes of 10 pencils and 4 loose pencils, and gives them out equally "
         "to 4 classes. How many pencils does each class get?", 6),
        ("trip", {"speed": 45, "hours": 2, "extra": 12},
         "Mia drives 45 miles per hour for 2 hours and then 12 more miles. "
         "How many miles does Mia drive in total?", 102),
    ],
)  # fmt: skip
def test_templates_word_and_answer_problems_as_worked_by_hand(
    template: str, numbers: dict[str, int], question: str, answer: int
) -> None:
    problem = next(t for t in TEMPLATES if t.name == template).build(numbers, "Mia")
    assert (problem.question, problem.answer) == (question, answer)


def test_every_template_is_drawn_and_only_whole_answers_arise(dev: list[WordProblem]) -> None:
    assert {p.template for p in dev} == {t.name for t in TEMPLATES}
    assert {p.num_steps for p in dev} == {1, 2, 3}
    assert max(p.answer for p in dev) < 1000  # small numbers: a 135M model sometimes succeeds


def test_problems_are_identical_for_a_seed_and_differ_across_seeds() -> None:
    assert generate_problems(3, 50) == generate_problems(3, 50)
    assert generate_problems(3, 20) == generate_problems(3, 50)[:20]
    assert generate_problems(3, 50) != generate_problems(4, 50)


@pytest.mark.parametrize("seed", [0, 1, 4321])
def test_no_other_split_shares_a_dev_question(dev: list[WordProblem], seed: int) -> None:
    dev_questions = {p.question for p in dev}
    other = generate_problems(seed, 2000)
    assert not dev_questions & {p.question for p in other}
    assert len({p.question for p in other}) > 1500  # the exclusion leaves a large space


def test_prompt_asks_for_steps_and_a_boxed_answer(dev: list[WordProblem]) -> None:
    message = format_prompt(dev[0])
    assert message.endswith(f"Problem: {dev[0].question}")
    assert "step by step" in message and "\\boxed{}" in message


def test_the_math_task_reads_and_grades_the_gold_answer(dev: list[WordProblem]) -> None:
    problem, task = dev[0], get_task("math")
    check = answer_check(dev[:5])
    message = format_prompt(problem)
    steps = f"First step.\n\nSecond step.\n\nThe answer is \\boxed{{{problem.answer}}}."
    assert task.split_steps(steps)[-1] == f"The answer is \\boxed{{{problem.answer}}}."
    assert task.answer_key(steps) == str(problem.answer)
    assert task.same_answer(str(problem.answer), f"{problem.answer}.0")
    assert check(message, steps) is True
    assert check(message, f"The answer is \\boxed{{{problem.answer + 1}}}.") is False
    assert check(message, f"The answer is {problem.answer}.") is False  # not boxed: not an answer
    assert check("What is 2+2?", "\\boxed{4}") is None  # not one of the problems: no verdict
