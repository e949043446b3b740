"""Tasks as search sees them: steps, answer keys, which answers agree, and the registry."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from rewards import math_answer
from rewards.tasks import TASKS, get_task, get_trainable_task

COUNTDOWN_REPLY = "25+50=75 (4,7,75)\n75+7=82 (4,82)\n82+4=86 (86)\nanswer: 25+50+7+4"


@pytest.mark.parametrize(
    ("task", "reply", "steps"),
    [
        ("countdown", COUNTDOWN_REPLY, COUNTDOWN_REPLY.split("\n")),
        ("countdown", "a\n\nb\n", ["a", "b"]),
        ("math", "First, x = 2.\n\nSo y = 4.\n\n\\boxed{4}", ["First, x = 2.", "So y = 4.", "\\boxed{4}"]),
        ("plain", "One line\nstill one step\n\nTwo", ["One line\nstill one step", "Two"]),
    ],
)
def test_a_reply_splits_into_the_tasks_steps(task: str, reply: str, steps: list[str]) -> None:
    assert get_task(task).split_steps(reply) == steps


@pytest.mark.parametrize(("task", "step_end"), [("countdown", "\n"), ("math", "\n\n"), ("plain", "\n\n")])
def test_step_ends(task: str, step_end: str) -> None:
    assert get_task(task).step_end == step_end


@pytest.mark.parametrize(
    ("task", "reply", "other", "agree"),
    [
        ("countdown", "answer: 25+50", "answer: 50+25", True),
        ("countdown", "answer: 25+50", "answer: 25*50", False),
        ("math", "so \\boxed{\\frac{1}{2}}", "hence \\boxed{0.5}", True),
        ("math", "\\boxed{3} then \\boxed{\\sqrt{4}}", "\\boxed{2}", True),
        ("math", "\\boxed{\\frac{1}{2}}", "\\boxed{\\frac{1}{3}}", False),
        ("plain", "Paris.", "  paris ", True),
        ("plain", "Paris", "Lyon", False),
    ],
)
def test_answers_agree_as_the_task_compares_them(task: str, reply: str, other: str, agree: bool) -> None:
    t = get_task(task)
    key, other_key = t.answer_key(reply), t.answer_key(other)
    assert key is not None and other_key is not None
    assert t.same_answer(key, other_key) is agree


@pytest.mark.parametrize(
    ("task", "reply"), [("countdown", "25+50=75 (4,7,75)"), ("math", "no box"), ("plain", " ")]
)
def test_a_reply_without_an_answer_has_no_key(task: str, reply: str) -> None:
    assert get_task(task).answer_key(reply) is None


def test_only_countdown_verifies_from_the_message_alone() -> None:
    message = "countdown target=86 numbers=4,7,25,50"
    assert get_task("countdown").verify(message, COUNTDOWN_REPLY) is True
    assert get_task("countdown").verify("hello", COUNTDOWN_REPLY) is None
    assert get_task("math").verify("What is 1/2?", "\\boxed{0.5}") is None
    assert get_task("plain").verify("hi", "hello") is None


def test_unknown_and_untrainable_tasks_list_the_valid_names() -> None:
    with pytest.raises(ValueError, match="countdown, math, plain"):
        get_task("chess")
    with pytest.raises(ValueError, match="trainable tasks: countdown"):
        get_trainable_task("plain")
    assert get_trainable_task("countdown").dev_messages(2) == get_trainable_task("countdown").dev_messages(2)
    assert set(TASKS) == {"countdown", "math", "plain"}


def test_math_answers_compare_off_the_main_thread() -> None:
    answers: list[bool] = []
    worker = threading.Thread(
        target=lambda: answers.append(get_task("math").same_answer("\\frac{2}{4}", "0.5"))
    )
    worker.start()
    worker.join()
    assert answers == [True]


def test_a_check_past_the_bound_off_the_main_thread_counts_as_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(math_answer, "TIMEOUT_SECONDS", 0.2)
    results: list[str] = []

    def slow(timeout: int | None) -> str:
        time.sleep(2.0)
        return "finished"

    began = time.monotonic()
    worker = threading.Thread(target=lambda: results.append(math_answer.bounded(slow, "timed out")))
    worker.start()
    worker.join()
    assert results == ["timed out"] and time.monotonic() - began < 1.5


def test_importing_the_tasks_and_the_search_api_loads_neither_torch_nor_sympy() -> None:
    code = (
        "import sys, rewards.tasks, search.api, search.runner; "
        "print('torch' in sys.modules, 'sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
