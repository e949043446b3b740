"""Tasks by name: what a reply to a kind of prompt must be, seen from outside the model.

Search works through `Task` (steps, answers, an optional verifier) and the learner through
`TrainableTask` (problems to practise and a dev split too), so a new task plugs into both by
registering here. A served model's task is in `engine.models`; a request may name another.
"""

from __future__ import annotations

from rewards.tasks.countdown import CountdownTask
from rewards.tasks.math_task import MathTask
from rewards.tasks.plain import PlainTask
from rewards.tasks.protocol import Task, TrainableTask

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "CountdownTask",
    "MathTask",
    "PlainTask",
    "Task",
    "TrainableTask",
    "get_task",
    "get_trainable_task",
]

DEFAULT_TASK = "plain"
"""The task of a model nothing more is known about."""

TASKS: dict[str, Task] = {task.name: task for task in (CountdownTask(), MathTask(), PlainTask())}
TRAINABLE_TASKS: dict[str, TrainableTask] = {"countdown": CountdownTask()}


def get_task(name: str) -> Task:
    """The task called `name`; ValueError listing the valid names."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def get_trainable_task(name: str) -> TrainableTask:
    """The task called `name` if the learner can practise it; ValueError listing those it can."""
    if name not in TRAINABLE_TASKS:
        valid = ", ".join(sorted(TRAINABLE_TASKS))
        raise ValueError(f"task {name!r} has no problems to learn from; trainable tasks: {valid}")
    return TRAINABLE_TASKS[name]
