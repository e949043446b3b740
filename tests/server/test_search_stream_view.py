"""The streamed reasoning of a search, from its events alone (`server.search_stream`): the best
path as it grows and switches branch, what a client replays it into, and the heartbeat."""

from __future__ import annotations

import asyncio

import pytest

from clients.common import best_path_steps
from search.context import SearchContext
from search.events import SearchEvent
from server.search_stream import HEARTBEAT_S, ReasoningView, live_deltas


def expand(node: int, parent: int, text: str, is_terminal: bool = False) -> SearchEvent:
    return SearchEvent("expand", node, parent=parent, text=text, is_terminal=is_terminal, is_duplicate=False)


def score(node: int, step: float, path: float) -> SearchEvent:
    return SearchEvent("score", node, score=step, path_score=path)


def feed(view: ReasoningView, *events: SearchEvent) -> str:
    for event in events:
        view.apply(event)
    return view.reasoning()


def test_committed_steps_are_written_as_they_settle_before_any_score() -> None:
    view = ReasoningView()
    assert feed(view, expand(1, 0, "a")) == ""
    assert feed(view, SearchEvent("commit", 1)) == "a\n"
    assert feed(view, expand(2, 1, "b"), SearchEvent("commit", 2)) == "b\n"
    assert feed(view, score(2, 0.9, 0.8), score(1, 0.7, 0.7)) == ""  # the same path: nothing new


def test_a_better_branch_is_written_after_a_back_line_and_the_answer_ends_the_log() -> None:
    view = ReasoningView()
    log = feed(view, expand(1, 0, "a"), expand(2, 0, "x"), score(1, 0.9, 0.9), score(2, 0.4, 0.4))
    assert log == "a  [prm 0.90]\n"
    log += feed(view, expand(3, 1, "b"), score(3, 0.8, 0.8))
    assert log.endswith("a  [prm 0.90]\nb  [prm 0.80]\n")  # a deeper step of the same path
    log += feed(view, expand(4, 2, "y", is_terminal=True), score(4, 0.95, 0.4))
    assert log.endswith("[back to the start]\nx  [prm 0.40]\ny  [prm 0.95]\n")  # a finished reply wins
    assert feed(view, SearchEvent("expand", 5, parent=4, text="", is_terminal=True)) == ""
    log += feed(view, SearchEvent("chosen", 3))
    assert log.endswith("[back to the start]\na  [prm 0.90]\nb  [prm 0.80]\n")
    assert best_path_steps(log) == ["a", "b"]


def test_duplicates_are_never_best_and_a_chosen_ancestor_shortens_the_path() -> None:
    view = ReasoningView()
    duplicate = SearchEvent("expand", 2, parent=0, text="a", is_terminal=True, is_duplicate=True)
    log = feed(view, expand(1, 0, "a"), duplicate, score(1, 0.5, 0.5), score(2, 0.9, 0.9))
    log += feed(view, expand(3, 1, "b"), score(3, 0.6, 0.5))
    assert log == "a  [prm 0.50]\nb  [prm 0.60]\n"
    log += feed(view, SearchEvent("chosen", 1))
    assert log.endswith("[back to step 1]\n") and best_path_steps(log) == ["a"]


def test_a_quiet_search_gets_progress_heartbeats_until_it_ends() -> None:
    async def collect() -> list[str]:
        events: asyncio.Queue[SearchEvent | None] = asyncio.Queue()
        ctx = SearchContext(engine=None, prompt_text="")  # type: ignore[arg-type]  # stats only

        async def search() -> None:
            await asyncio.sleep(2.5 * HEARTBEAT_S)
            events.put_nowait(expand(1, 0, "a"))
            events.put_nowait(SearchEvent("chosen", 1))
            events.put_nowait(None)

        task = asyncio.ensure_future(search())
        kinds = [
            delta.search_event.kind if delta.search_event else "reasoning"
            async for delta in live_deltas(events, ctx)
        ]
        await task
        return kinds

    kinds = asyncio.run(collect())
    assert kinds[:3] == ["progress", "progress", "progress"]  # at once, then twice while quiet
    assert kinds[-3:] == ["expand", "chosen", "reasoning"]


@pytest.mark.parametrize(
    ("log", "steps"),
    [
        ("a  [prm 0.10]\nb\n", ["a", "b"]),
        ("a\nb\n[back to step 1]\nc  [prm 1.00]\n", ["a", "c"]),
        ("a\n[back to the start]\n", []),
    ],
)
def test_a_client_replays_the_log_into_the_best_path(log: str, steps: list[str]) -> None:
    assert best_path_steps(log) == steps
