"""What the learner trains on: sound best paths capped per problem, sibling DPO pairs, resumable
collection parts and round state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards.tasks import get_trainable_task
from trainer.dpo import sibling_pairs
from trainer.expert_iteration import best_paths
from trainer.learn import parse_every
from trainer.round_state import RoundState, last_finished_time
from trainer.selfplay import Collection, Reply, Solved

MESSAGE = "countdown target=11 numbers=42,20,51,84"
GOOD_A = ["84-51=33 (42,20,33)", "42-33=9 (20,9)", "20-9=11 (11)", "answer: 20-(42-(84-51))"]
GOOD_B = ["84-42=42 (20,51,42)", "51-42=9 (20,9)", "20-9=11 (11)", "answer: 20-(51-(84-42))"]
BAD = ["84-51=33 (42,20,33)", "42+33=75 (20,75)", "75-20=11 (11)", "answer: (42+(84-51))-20"]


def reply(steps: list[str], verified: bool, sound: bool) -> Reply:
    return Reply("\n".join(steps), steps, verified, sound)


def solved(*replies: Reply, message: str = MESSAGE) -> Solved:
    return Solved(message, list(replies), any(r.is_verified for r in replies), 100)


def test_best_paths_keep_sound_replies_only_deduplicated_and_capped() -> None:
    unsound = reply(GOOD_A[:1] + ["42-33=8 (20,8)"] + GOOD_A[2:], verified=True, sound=False)
    problems = [
        solved(reply(GOOD_A, True, True), unsound, reply(BAD, False, False)),
        solved(reply(GOOD_A, True, True), reply(GOOD_B, True, True)),  # GOOD_A again: one copy
    ]
    assert sorted(best_paths(problems, max_per_problem=5)) == sorted(
        [(MESSAGE, "\n".join(GOOD_A)), (MESSAGE, "\n".join(GOOD_B))]
    )
    assert len(best_paths(problems, max_per_problem=1)) == 1


SOLVER_ROUTE = ["42-20=22 (51,84,22)", "84-51=33 (22,33)", "33-22=11 (11)", "answer: ((84-51)-(42-20))"]


def test_best_paths_keep_the_route_of_a_verified_reply_with_a_slip_in_its_steps() -> None:
    slip = reply(SOLVER_ROUTE[:1] + ["84-51=133 (22,33)"] + SOLVER_ROUTE[2:], verified=True, sound=False)
    wrong = reply(BAD, verified=False, sound=False)
    task = get_trainable_task("countdown")
    assert task.verify(MESSAGE, slip.text) and not task.is_sound(MESSAGE, slip.text)
    assert best_paths([solved(slip, wrong)], 5) == []
    rewritten = best_paths([solved(slip, wrong)], 5, task.sound_rewrite)
    assert rewritten == [(MESSAGE, "\n".join(SOLVER_ROUTE))]
    assert task.is_sound(MESSAGE, rewritten[0][1])
    assert task.sound_rewrite(MESSAGE, wrong.text) is None


def test_sibling_pairs_split_after_the_shared_steps() -> None:
    pairs = sibling_pairs(
        [solved(reply(GOOD_B, True, True), reply(GOOD_A, True, True), reply(BAD, False, False))], 4
    )
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair.prompt == f"<bos>{MESSAGE}\n{GOOD_A[0]}\n"  # GOOD_A shares BAD's first step
    assert pair.chosen == "\n".join(GOOD_A[1:]) and pair.rejected == "\n".join(BAD[1:])


def test_no_pairs_without_a_sound_reply() -> None:
    assert sibling_pairs([solved(reply(BAD, False, False), reply(GOOD_A, True, False))], 4) == []


def test_collection_parts_round_trip_and_ignore_a_torn_temp(tmp_path: Path) -> None:
    collection = Collection(tmp_path / "collect")
    collection.write_part(0, [solved(reply(GOOD_A, True, True))])
    (tmp_path / "collect" / ".part-00001.jsonl.tmp").write_text('{"message": "torn')
    reopened = Collection(tmp_path / "collect")
    assert reopened.num_parts_done == 1
    assert [s.replies[0].steps for s in reopened.read()] == [GOOD_A]
    assert not (tmp_path / "collect" / ".part-00001.jsonl.tmp").exists()


def test_round_state_resumes_with_completed_stages(tmp_path: Path) -> None:
    state = RoundState.open(tmp_path / "round-01", {"round": 1, "parent": 0})
    state.complete("collect", {"problems": 3}, 1.5)
    again = RoundState.open(tmp_path / "round-01", {"round": 99})
    assert again.round == 1 and again.is_done("collect") and not again.is_done("gate")
    assert again.outputs("collect") == {"problems": 3, "seconds": 1.5}
    assert last_finished_time(tmp_path) == 0.0
    again.finish()
    assert (
        last_finished_time(tmp_path)
        == json.loads((tmp_path / "round-01" / "state.json").read_text())["finished"]
    )


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("90s", 90), ("45", 45)])
def test_every_reads_units(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


def test_every_refuses_other_text() -> None:
    with pytest.raises(Exception, match="--every"):
        parse_every("soon")


def test_traced_problems_come_back_graded_by_the_task(tmp_path: Path) -> None:
    """What users searched on the model since the last round becomes training data; searches on
    other models, older ones and prompts that pose no problem of the task do not."""
    from server.trace_records import ReplyRecord, TraceRecord
    from server.trace_store import TraceStore
    from trainer.selfplay import traced_problems

    def record(model: str, message: str, created: float) -> TraceRecord:
        replies = [ReplyRecord("\n".join(s), s, [], None, None) for s in (GOOD_A, BAD)]
        messages = [{"role": "user", "content": message}]
        return TraceRecord(
            "", created, model, "countdown-v0", "mcts", "", messages, {}, replies, "\n".join(BAD)
        )

    store = TraceStore(tmp_path / "traces.sqlite3")
    store.save(record("countdown", MESSAGE, 100.0))
    store.save(record("countdown", MESSAGE, 10.0))  # before the last round
    store.save(record("smollm2-135m-instruct", MESSAGE, 100.0))
    store.save(record("countdown", "What is 2+2?", 100.0))
    store.close()
    [problem] = traced_problems(
        tmp_path / "traces.sqlite3", "countdown", 50.0, get_trainable_task("countdown")
    )
    assert problem.source.startswith("trace:") and not problem.is_answer_verified
    assert [(r.is_verified, r.is_sound) for r in problem.replies] == [(True, True), (False, False)]
    assert (
        traced_problems(tmp_path / "absent.sqlite3", "countdown", 0.0, get_trainable_task("countdown")) == []
    )


def test_redo_from_reruns_a_stage_and_the_later_ones_on_the_same_data(tmp_path: Path) -> None:
    from trainer.learn import redo_from

    state = RoundState.open(tmp_path / "round-01", {"round": 1, "parent": 0})
    for stage in ("collect", "expert_iteration", "dpo", "reward_refresh", "gate"):
        state.complete(stage, {}, 1.0)
    state.complete("publish", {"published": None}, 0.0)
    state.finish()
    for folder in ("collect", "candidate-ei", "ei-runs", "checker"):
        (tmp_path / "round-01" / folder).mkdir()
    redo_from(state, "expert_iteration")
    assert state.is_done("collect") and not state.is_finished
    assert not any(state.is_done(s) for s in ("expert_iteration", "dpo", "reward_refresh", "gate", "publish"))
    assert (tmp_path / "round-01" / "collect").is_dir()
    assert (
        not (tmp_path / "round-01" / "candidate-ei").exists()
        and not (tmp_path / "round-01" / "checker").exists()
    )


def test_a_published_round_is_not_redone(tmp_path: Path) -> None:
    from trainer.learn import redo_from

    state = RoundState.open(tmp_path / "round-01", {"round": 1, "parent": 0})
    state.complete("publish", {"published": 1}, 0.0)
    with pytest.raises(SystemExit, match="already published"):
        redo_from(state, "gate")
