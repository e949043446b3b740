"""The caller's limits on the reply hold in every branch of every strategy, on the real policy:
`max_reply_tokens` caps every path, `stop` ends every branch, `logprobs` returns the chosen
path's tokens, and a seeded search repeats itself."""

from __future__ import annotations

import pytest

from search.config import SearchConfig
from search.expand import path_tokens
from search.registry import STRATEGIES
from search.runner import run_search

SMALL = {"n": 3, "beam_width": 2, "expansions": 2, "simulations": 10, "max_step_tokens": 24, "seed": 7}
REPLY_CAP = 24  # a Countdown reply runs ~65 tokens: every path meets the cap
ANSWER = "answer"


def config(strategy: str, budget: int = 300, **overrides: object) -> SearchConfig:
    knobs = {**SMALL, **overrides}
    return SearchConfig(strategy=strategy, budget_tokens=budget, max_seconds=120.0, task="countdown", **knobs)


def search(runner, problem, cfg: SearchConfig):
    return runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_max_reply_tokens_caps_every_path(runner, problems, strategy):
    result = search(runner, problems[0], config(strategy, max_reply_tokens=REPLY_CAP))
    nodes = list(result.tree.root.walk())
    assert max(path_tokens(n) for n in nodes) <= REPLY_CAP
    at_cap = [n for n in nodes if path_tokens(n) == REPLY_CAP]
    assert at_cap and all(n.is_terminal and n.finish_reason == "length" and not n.children for n in at_cap)
    assert result.text and len(runner.engine.tokenize(result.text)) <= REPLY_CAP


@pytest.mark.parametrize("strategy", ["greedy", "best_of_n", "self_consistency", "beam", "mcts", "dvts"])
def test_a_stop_string_ends_every_branch(runner, problems, strategy):
    result = search(runner, problems[1], config(strategy, stop=(ANSWER,)))
    assert all(ANSWER not in n.text for n in result.tree.root.walk())
    ended = [n for n in result.tree.root.walk() if n.is_terminal and not n.is_cut]
    assert ended and all(not n.children for n in ended)
    assert ANSWER not in result.text and result.finish_reason == "stop", result.text


@pytest.mark.parametrize("strategy", ["greedy", "best_of_n", "beam", "mcts"])
def test_logprobs_are_the_chosen_paths_tokens(runner, problems, strategy):
    result = search(runner, problems[2], config(strategy, logprobs=2))
    path = [n for n in result.tree.root.walk() if n.step_texts() == result.steps and n.is_terminal]
    assert result.logprobs is not None and path
    assert [item.token_id for item in result.logprobs] == [
        t for step in path[0].path() for t in step.token_ids
    ]
    assert all(item.logprob <= 0 and len(item.top) == 2 for item in result.logprobs)
    assert search(runner, problems[2], config(strategy)).logprobs is None


@pytest.mark.parametrize("strategy", ["beam", "mcts", "self_consistency"])
def test_a_seeded_search_repeats_itself(runner, problems, strategy):
    first, second = (search(runner, problems[0], config(strategy, temperature=1.0)) for _ in range(2))
    assert first.text == second.text
    assert first.tree.to_dict() == second.tree.to_dict()
