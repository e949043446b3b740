"""Pure policy checks: config validation, limits, presets, request resolution, budget arithmetic."""

from __future__ import annotations

import pytest

from search.api import ModelDefaults, resolve_search
from search.budget import Budget
from search.config import REASONING_EFFORT_PRESETS, SearchConfig, SearchLimits
from search.registry import STRATEGIES, get_strategy
from search.tree import Node, SearchTree

LIMITS = SearchLimits()


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ValueError, match="strategy") as err:
        get_strategy("astar")
    for name in STRATEGIES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("search", "param"),
    [
        ({"strategy": "astar"}, "strategy"),
        ({"budget_tokens": 0}, "budget_tokens"),
        ({"budget_tokens": LIMITS.budget_tokens + 1}, "budget_tokens"),
        ({"n": -1}, "n"),
        ({"n": LIMITS.n + 1}, "n"),
        ({"beam_width": LIMITS.beam_width + 1}, "beam_width"),
        ({"expansions": 0}, "expansions"),
        ({"simulations": LIMITS.simulations + 1}, "simulations"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"max_seconds": LIMITS.max_seconds + 1}, "max_seconds"),
        ({"temperature": 3.0}, "temperature"),
        ({"aggregate": "median"}, "aggregate"),
        ({"max_step_tokens": LIMITS.max_step_tokens + 1}, "max_step_tokens"),
        ({"beam_size": 4}, "beam_size"),
        ({"n": "many"}, "n"),
        ({"rollout": "sometimes"}, "rollout"),
    ],
)
def test_bad_knob_raises_value_error_naming_it(search, param):
    with pytest.raises(ValueError, match=rf"search\.{param}\b"):
        resolve_search(search, None, LIMITS)


@pytest.mark.parametrize("effort", sorted(REASONING_EFFORT_PRESETS))
def test_reasoning_effort_presets_resolve_within_default_limits(effort):
    config = resolve_search(None, effort, LIMITS, ModelDefaults(reply_tokens=80))
    preset = REASONING_EFFORT_PRESETS[effort]
    assert (config.strategy, config.budget_tokens) == (preset.strategy, preset.budget_tokens)
    assert config.strategy in STRATEGIES
    LIMITS.check(config)


def sized(search: dict, reply_tokens: int) -> SearchConfig:
    config = resolve_search(search, None, LIMITS, ModelDefaults(reply_tokens=reply_tokens))
    assert config is not None
    return config


def test_recommended_temperature_and_aggregate_apply_unless_the_request_sets_them():
    defaults = ModelDefaults(temperature=0.3, aggregate="mean")
    unset = resolve_search({}, None, LIMITS, defaults)
    assert (unset.temperature, unset.aggregate) == (0.3, "mean")
    asked = resolve_search({"temperature": 1.0, "aggregate": "last"}, None, LIMITS, defaults)
    assert (asked.temperature, asked.aggregate) == (1.0, "last")


def test_steps_may_run_as_long_as_the_task_needs_unless_the_request_says():
    countdown, math = ModelDefaults(task="countdown"), ModelDefaults(task="math")
    assert resolve_search({}, None, LIMITS, countdown).max_step_tokens == 48  # a line
    assert resolve_search({}, None, LIMITS, math).max_step_tokens == 128  # a paragraph
    assert resolve_search({"task": "plain"}, None, LIMITS, countdown).max_step_tokens == 128
    assert resolve_search({"max_step_tokens": 20}, None, LIMITS, math).max_step_tokens == 20


@pytest.mark.parametrize(("strategy", "knob"), [("best_of_n", "n"), ("mcts", "simulations")])
def test_unset_widths_grow_with_the_budget(strategy, knob):
    small, large = (sized({"strategy": strategy, "budget_tokens": b}, reply_tokens=64) for b in (1024, 2048))
    assert getattr(large, knob) == 2 * getattr(small, knob)


@pytest.mark.parametrize("budget", [320, 512, 1000, 4096])
@pytest.mark.parametrize("reply", [40, 80])
def test_sized_paths_can_each_finish_a_reply_within_the_budget(budget, reply):
    """Where the budget pays for at least 4 replies (below that, 2 paths are the floor)."""
    beam, best = (sized({"strategy": s, "budget_tokens": budget}, reply) for s in ("beam", "best_of_n"))
    assert 2 < beam.beam_width * beam.expansions and beam.beam_width * beam.expansions * reply <= budget
    assert 2 < best.n and best.n * reply <= budget


def test_given_widths_are_kept_and_expansions_follow_the_given_beam_width():
    search = {"strategy": "beam", "budget_tokens": 960, "beam_width": 2, "simulations": 3}
    config = sized(search, reply_tokens=80)
    assert (config.beam_width, config.expansions, config.simulations) == (2, 6, 3)


def test_sized_widths_stop_at_the_limits_instead_of_failing():
    config = sized({"budget_tokens": LIMITS.budget_tokens}, reply_tokens=8)
    assert (config.n, config.simulations) == (LIMITS.n, LIMITS.simulations)
    assert config.beam_width <= LIMITS.beam_width and config.expansions <= LIMITS.expansions


def test_bad_reasoning_effort_is_named():
    with pytest.raises(ValueError, match="reasoning_effort"):
        resolve_search(None, "extreme", LIMITS)


def test_no_search_means_plain_generation_and_overrides_apply():
    assert resolve_search(None, None, LIMITS) is None
    config = resolve_search({"strategy": "mcts", "simulations": 5}, "low", LIMITS)
    assert config is not None
    assert (config.strategy, config.simulations) == ("mcts", 5)
    assert config.budget_tokens == REASONING_EFFORT_PRESETS["low"].budget_tokens


def test_mcts_rolls_out_unless_asked_not_to():
    assert sized({"strategy": "mcts"}, reply_tokens=80).rollout
    assert not sized({"strategy": "mcts", "rollout": False}, reply_tokens=80).rollout


@pytest.mark.parametrize(
    ("budget", "used", "num_sequences", "wanted", "cap"),
    [(100, 0, 4, 48, 25), (100, 90, 4, 48, 2), (100, 97, 4, 48, 0), (100, 0, 1, 48, 48), (7, 0, 8, 48, 0)],
)
def test_token_cap_keeps_the_worst_case_inside_the_budget(budget, used, num_sequences, wanted, cap):
    b = Budget(max_tokens=budget, max_seconds=10.0, tokens_used=used)
    assert b.cap_new_tokens(num_sequences, wanted) == cap
    assert used + num_sequences * cap <= budget


def test_budget_stops_on_a_verified_answer_only_when_asked():
    assert not Budget(10, 10.0, stop_on_verified=False, has_verified_answer=True).is_exhausted()
    assert Budget(10, 10.0, stop_on_verified=True, has_verified_answer=True).is_exhausted()
    assert Budget(10, 10.0, tokens_used=10).is_exhausted()


def test_tree_prefix_ids_and_trace():
    tree = SearchTree([1, 2])
    a = tree.root.add_child(Node(token_ids=[3, 4], text="a", prm_score=0.5))
    b = a.add_child(Node(token_ids=[5], text="b", prm_score=0.25, is_terminal=True))
    assert b.prefix_ids(tree.prompt_ids) == [1, 2, 3, 4, 5]
    assert b.reply_text() == "a\nb" and b.path_scores() == [0.5, 0.25]
    trace = tree.to_dict()
    assert (trace["num_nodes"], trace["num_tokens"]) == (2, 3)
    assert trace["root"]["children"][0]["children"][0]["text"] == "b"


def test_config_rejects_bad_values_directly():
    with pytest.raises(ValueError, match="beam_width"):
        SearchConfig(beam_width=0)


def test_the_task_comes_from_the_model_unless_the_request_names_one():
    defaults = ModelDefaults(task="countdown")
    assert resolve_search({}, None, LIMITS, defaults).task == "countdown"
    assert resolve_search({"task": "math"}, None, LIMITS, defaults).task == "math"
    assert resolve_search({}, None, LIMITS).task == "plain"
    with pytest.raises(ValueError, match=r"^search\.task must be one of countdown, math, plain"):
        resolve_search({"task": "chess"}, None, LIMITS, defaults)


def test_request_params_apply_and_a_search_knob_of_the_same_name_wins():
    params = {"seed": 5, "stop": ("###",), "max_reply_tokens": 40}
    search = {"strategy": "best_of_n", "budget_tokens": 400}
    config = resolve_search(search, None, LIMITS, request_params=params)
    assert (config.seed, config.stop, config.max_reply_tokens) == (5, ("###",), 40)
    assert config.n == 400 // 40  # widths sized to replies no longer than the cap
    assert resolve_search({"seed": 9}, None, LIMITS, request_params=params).seed == 9
