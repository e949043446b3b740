"""Every strategy on the real bundled Countdown policy + PRM: replies, exact budgets, KV reuse,
token accounting and a clean engine afterwards. Budgets are small: the machine is shared."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import pytest

from engine.protocol import SamplingParams
from rewards.countdown.steps import ANSWER_PREFIX, parse_step, split_reply
from rewards.countdown.verifier import verify_reply
from search.config import SearchConfig
from search.events import SearchEvent, SearchEvents
from search.expand import path_value
from search.registry import STRATEGIES
from search.rollout import finished_replies
from search.runner import run_search

SMALL = {"n": 3, "beam_width": 2, "expansions": 2, "simulations": 10, "max_step_tokens": 24, "seed": 7}
TASK = "countdown"
IDLE_WAIT_S = 5.0
PARSE_BUDGET = 600


def config(strategy: str, budget: int = 400, **overrides: object) -> SearchConfig:
    return SearchConfig(
        strategy=strategy, budget_tokens=budget, max_seconds=120.0, task=TASK, **{**SMALL, **overrides}
    )


def walk_trace(root: dict) -> list[dict]:
    entries, stack = [], [root]
    while stack:
        entry = stack.pop()
        entries.append(entry)
        stack.extend(entry["children"])
    return entries


def assert_engine_idle(runner) -> None:
    deadline = time.monotonic() + IDLE_WAIT_S
    stats = runner.engine.cache_stats()
    while (stats.locked_nodes or stats.running_sequences) and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = runner.engine.cache_stats()
    assert (stats.locked_nodes, stats.running_sequences) == (0, 0)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_strategy_replies_parse_and_account_for_every_token(runner, problems, strategy):
    problem = problems[0]
    before = runner.engine.cache_stats().generated_tokens
    cfg = config(strategy, PARSE_BUDGET)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    parts = split_reply(result.text)
    assert parts.answer_line is not None and parts.answer_line.startswith(ANSWER_PREFIX), result.text
    for line in parts.step_lines:
        parse_step(line)
    assert result.steps == result.text.split("\n")
    assert len(result.step_scores) == len(result.steps)
    assert result.tree.num_tokens() == result.stats.num_tokens_generated
    assert runner.engine.cache_stats().generated_tokens - before == result.stats.num_tokens_generated
    assert result.stats.num_tokens_generated <= PARSE_BUDGET
    assert_engine_idle(runner)


@pytest.mark.parametrize("budget", [1, 23, 97])
@pytest.mark.parametrize("strategy", ["best_of_n", "beam", "mcts", "revise"])
def test_budget_is_respected_to_the_token(runner, problems, strategy, budget):
    problem = problems[1]
    before = runner.engine.cache_stats().generated_tokens
    cfg = config(strategy, budget, n=4, expansions=3)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    engine_tokens = runner.engine.cache_stats().generated_tokens - before
    assert engine_tokens == result.stats.num_tokens_generated == result.tree.num_tokens()
    assert engine_tokens <= budget
    assert_engine_idle(runner)


def test_search_calls_carry_the_cache_salt(runner, problems):
    """A search's engine calls cache its prompt in the context's namespace only."""
    problem, salt = problems[0], "tenant-of-this-search"
    prompt_ids = runner.prompt_ids(problem) * 4  # past one vLLM block (32 tokens): reusable there too
    runner.run(run_search(runner.context(problem, cache_salt=salt), prompt_ids, config("best_of_n")))
    probe = SamplingParams(max_new_tokens=1, temperature=0)
    [[other]] = runner.run(runner.engine.generate([prompt_ids], replace(probe, cache_salt="another-tenant")))
    [[same]] = runner.run(runner.engine.generate([prompt_ids], replace(probe, cache_salt=salt)))
    assert other.num_cached_prompt_tokens == 0
    assert same.num_cached_prompt_tokens >= 32


@pytest.mark.parametrize("strategy", ["beam", "mcts", "dvts"])
def test_steps_reuse_their_parents_kv(runner, problems, strategy):
    problem = problems[2]
    prompt_ids = runner.prompt_ids(problem)
    result = runner.run(run_search(runner.context(problem), prompt_ids, config(strategy)))
    stats = result.stats
    assert stats.num_engine_calls >= 2
    assert stats.num_prompt_tokens_reused > stats.num_prompt_tokens_computed
    assert stats.num_prompt_tokens_computed <= len(prompt_ids) + 2 * stats.num_nodes_expanded


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_events_number_the_nodes_as_the_trace_and_commit_only_the_answers_path(runner, problems, strategy):
    problem = problems[0]
    events: list[SearchEvent] = []
    ctx = runner.context(problem, events=SearchEvents(events.append))
    result = runner.run(run_search(ctx, runner.prompt_ids(problem), config(strategy)))
    by_seq = {entry["seq"]: entry for entry in walk_trace(result.trace()["tree"]["root"])}
    expands = [e for e in events if e.kind == "expand"]
    assert [e.node for e in expands] == sorted(by_seq)[1:]  # 1..N in the order nodes joined
    assert all(by_seq[e.node]["text"] == e.text for e in expands)
    chosen_path = {seq for seq, entry in by_seq.items() if entry["is_chosen"]}
    assert [e.node for e in events if e.kind == "chosen"] == [max(chosen_path)]
    assert {e.node for e in events if e.kind == "commit"} <= chosen_path
    scored = {e.node: e.score for e in events if e.kind == "score"}
    traced = {seq: entry["prm_score"] for seq, entry in by_seq.items() if entry["prm_score"] is not None}
    assert scored == traced


@pytest.mark.parametrize("use_verifier", [True, False])
def test_verifier_marks_and_prefers_verified_answers(runner, problems, use_verifier):
    problem = problems[0]
    cfg = config("beam", 600, beam_width=3, verifier=use_verifier)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    leaves = result.tree.terminal_leaves()
    verified = [leaf for leaf in leaves if leaf.is_verified]
    assert all(verify_reply(problem, leaf.reply_text()) for leaf in verified)
    if not use_verifier:
        assert not verified and not result.is_verified
    else:
        assert verified == [leaf for leaf in leaves if verify_reply(problem, leaf.reply_text())]
        assert result.is_verified == bool(verified)
        assert not result.is_verified or verify_reply(problem, result.text)


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_cancelled_search_leaves_the_engine_idle(runner, problems, strategy):
    problem = problems[1]

    async def start_then_cancel() -> None:
        task = asyncio.create_task(
            run_search(runner.context(problem), runner.prompt_ids(problem), config(strategy, 2000))
        )
        while runner.engine.cache_stats().running_sequences == 0 and not task.done():
            await asyncio.sleep(0.01)
        assert not task.done(), "the search finished before it could be cancelled"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    runner.run(start_then_cancel())
    assert_engine_idle(runner)


@pytest.mark.parametrize("strategy", ["beam", "mcts", "best_of_n"])
def test_deadline_cuts_the_search_short(runner, problems, strategy):
    problem = problems[2]
    cfg = replace(config(strategy, 4000), max_seconds=0.05, simulations=100)
    began = time.monotonic()
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    assert time.monotonic() - began < 5.0
    assert result.stats.num_tokens_generated < 4000
    assert result.tree.num_tokens() == result.stats.num_tokens_generated
    assert_engine_idle(runner)


def test_trace_is_json_and_matches_the_tree(runner, problems):
    problem = problems[0]
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), config("beam")))
    trace = json.loads(json.dumps(result.trace()))
    assert trace["tree"]["num_tokens"] == result.stats.num_tokens_generated
    assert trace["tree"]["num_nodes"] == result.tree.num_nodes() > len(result.steps)
    assert trace["steps"] == result.steps and trace["strategy"] == "beam"


@pytest.mark.parametrize("strategy", ["best_of_n", "beam", "mcts"])
def test_prm_scores_every_step_and_ranks_the_reply(prm_runner, problems, strategy):
    problem = problems[0]
    cfg = config(strategy)
    result = prm_runner.run(run_search(prm_runner.context(problem), prm_runner.prompt_ids(problem), cfg))
    assert result.stats.num_prm_calls >= 1
    assert len(result.step_scores) == len(result.steps) and all(0 <= s <= 1 for s in result.step_scores)
    if strategy == "best_of_n":
        finished = [leaf for leaf in result.tree.terminal_leaves() if leaf.path_scores()]
        assert result.score == max(path_value(leaf, cfg) for leaf in finished)


def test_without_prm_steps_are_scored_by_policy_probability(runner, problems):
    problem = problems[0]
    cfg = config("beam", prm=False)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    assert result.stats.num_prm_calls == 0
    assert all(0 < s <= 1 for s in result.step_scores) and result.step_scores


def test_mcts_expands_several_leaves_per_engine_call(runner, problems):
    problem = problems[1]
    cfg = config("mcts", 2000, simulations=12, expansions=2, rollout=False)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    stats = result.stats
    assert stats.num_nodes_expanded >= 4, stats
    assert stats.num_engine_calls < stats.num_nodes_expanded, stats


def test_mcts_rolls_out_several_leaves_per_engine_call(runner, problems):
    problem = problems[1]
    cfg = config("mcts", 2000, simulations=12, expansions=2)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    replies = [n for n in result.tree.root.walk() if n.is_terminal]
    # One leaf per call would give `expansions` replies a call; the first call is the root's alone.
    assert len(replies) > cfg.expansions * result.stats.num_engine_calls, result.stats


def assert_steps_valued_by_whole_replies(result, budget: int, every_first_step_has_one: bool) -> list:
    """Each first step's visits count the finished replies below it (values in [0, 1]); the
    answer is one of those whole replies, never one the cap cut; the budget held. Returns them."""
    replies = finished_replies(result.tree)
    for first in result.tree.root.distinct_children():
        below = [r for r in replies if first in r.path()]
        assert below or not every_first_step_has_one  # no value without a reply below it
        assert first.visits >= len(below) and 0 <= first.value <= 1
    assert result.text in {r.reply_text() for r in replies}
    assert result.stats.num_tokens_generated <= budget
    return replies


@pytest.mark.parametrize("index", [0, 1, 2])
def test_mcts_values_each_step_by_the_whole_replies_through_it(runner, problems, index):
    problem = problems[index]
    cfg = config("mcts", 500, expansions=2, simulations=64, max_step_tokens=48, temperature=1.0)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    root = result.tree.root
    firsts = root.distinct_children()
    assert len(firsts) >= 2 and root.visits == sum(c.visits for c in firsts)  # every backup reached the root
    assert_steps_valued_by_whole_replies(result, 500, every_first_step_has_one=True)


def test_beam_backtracks_to_pruned_paths_while_budget_is_left(runner, problems):
    problem = problems[0]
    cfg = config("beam", 600, beam_width=2, expansions=3, rollout=False)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    finished = [leaf for leaf in result.tree.terminal_leaves() if not leaf.is_duplicate]
    assert len(finished) > cfg.beam_width  # a second beam ran from the paths the first one cut
    assert result.stats.num_tokens_generated > 600 - cfg.beam_width * cfg.expansions * cfg.max_step_tokens


@pytest.mark.parametrize("rollout", [True, False])
def test_beam_starts_from_a_whole_round_of_first_steps(runner, problems, rollout):
    problem = problems[2]
    widths = {"beam_width": 2, "expansions": 3, "max_step_tokens": 48}
    cfg = config("beam", 600, temperature=1.0, rollout=rollout, **widths)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    # Rolled out, each first step heads a whole reply (and the budget goes deeper, not wider).
    assert len(result.tree.root.children) == cfg.beam_width * cfg.expansions


@pytest.mark.parametrize("index", [0, 1, 2])
def test_lookahead_beam_values_steps_by_replies_and_goes_deeper(runner, problems, index):
    problem = problems[index]
    cfg = config("beam", 700, beam_width=2, expansions=2, max_step_tokens=48, temperature=1.0)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    root = result.tree.root
    replies = assert_steps_valued_by_whole_replies(result, 700, every_first_step_has_one=False)
    assert root.visits >= len(replies) > cfg.beam_width * cfg.expansions  # every reply was backed up
    # The beam went deeper: a later rollout continued a kept first step instead of the root.
    branched = [first for first in root.distinct_children() if len(first.distinct_children()) >= 2]
    assert branched, result.tree.to_dict()


@pytest.mark.parametrize(("strategy", "rollout"), [("beam", True), ("beam", False), ("dvts", True)])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_tight_budget_ends_in_a_whole_answer_not_a_cut_step(runner, problems, strategy, rollout, index):
    problem = problems[index]
    widths = {"beam_width": 2, "expansions": 2, "max_step_tokens": 48}
    cfg = config(strategy, 256, temperature=0.3, rollout=rollout, **widths)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    assert split_reply(result.text).answer_line is not None, result.text
    assert result.finish_reason == "stop", result.text  # "length": the path was cut by the cap
    assert result.stats.num_tokens_generated <= 256


def test_dvts_starts_new_subtrees_while_budget_is_left(runner, problems):
    problem = problems[0]
    cfg = config("dvts", 800, beam_width=2, expansions=2, temperature=1.0, max_step_tokens=48)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    assert len(result.tree.root.children) > cfg.beam_width  # a second round of subtrees ran
    # Rounds stop only when the budget cannot pay for the next steps.
    assert result.stats.num_tokens_generated > 800 - 2 * cfg.beam_width * cfg.expansions * cfg.max_step_tokens


def test_mcts_searches_a_small_budget_instead_of_reserving_it(runner, problems):
    problem = problems[1]
    cfg = config("mcts", 256, expansions=2, simulations=64, max_step_tokens=48, rollout=False)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    # Reserving 3 worst-case steps (144 tokens) left room for one expansion of the root (then a
    # greedy finish, one child per node); planned at the length of the steps actually sampled,
    # the search expands nodes below it too.
    searched = [n for n in result.tree.root.walk() if len(n.children) >= cfg.expansions]
    assert len(searched) >= 2, [len(n.children) for n in result.tree.root.walk()]
    assert split_reply(result.text).answer_line is not None, result.text
    assert result.stats.num_tokens_generated <= 256


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("rollout", [True, False])
def test_mcts_keeps_enough_budget_to_finish_an_answer(runner, problems, index, rollout):
    problem = problems[index]
    cfg = config("mcts", 256, expansions=4, simulations=64, max_step_tokens=32, rollout=rollout)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    assert split_reply(result.text).answer_line is not None, result.text
    assert result.stats.num_tokens_generated <= 256


@pytest.mark.parametrize("rollout", [True, False])
def test_mcts_below_its_reserve_decodes_greedily(runner, problems, rollout):
    problem = problems[0]
    cfg = config("mcts", 100, expansions=4, max_step_tokens=48, rollout=rollout)
    result = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), cfg))
    plain = config("greedy", 100)
    greedy = runner.run(run_search(runner.context(problem), runner.prompt_ids(problem), plain))
    assert result.text == greedy.text and result.text
