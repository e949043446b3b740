"""`./run learn`: rounds of search-and-learn that publish better weights for the server.

    ./run learn [--model countdown] [--rounds N] [--every 30m] [--problems 2000] ...

A round collects self-play searches (verifier on) on fresh seeded problems, fine-tunes the
served policy on its sound best paths (expert iteration), optionally adds DPO on sibling pairs,
refreshes the paired claim checker on the round's rollouts, gates the candidate against the
served version on the dev split, and publishes it to the version store, which a running server
watches and hot-swaps. Every stage is resumable: rerun the same command after a kill and the
round goes on from the stage it was in, while the server keeps serving the last good version.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from engine.models import BUNDLED_MODELS, resolve_model_dir
from engine.versions import VersionStore
from rewards.tasks import get_trainable_task
from trainer.expert_iteration import ExpertIteration
from trainer.fine_tune import FineTune
from trainer.gate import GateSettings
from trainer.learn_stages import STAGE_FOLDERS, STAGES, LearnSettings, RoundContext
from trainer.round_state import RoundState, last_finished_time, round_folders
from trainer.temperature import TemperatureTuning

EVERY_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_every(text: str) -> float:
    """`30m`, `2h`, `90s` (or plain seconds) -> seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"--every takes e.g. 30m, 2h or 90s, got {text!r}")
    return float(match.group(1)) * EVERY_UNITS[match.group(2) or "s"]


def next_round(
    settings: LearnSettings, store: VersionStore, prm_id: str | None, resume_last: bool = False
) -> RoundState:
    """The unfinished round to resume (or, with `resume_last`, the last round however it ended),
    else a new one starting from the served versions."""
    model_root = settings.runs_dir / settings.model
    folders = round_folders(model_root)
    if folders and (resume_last or not RoundState.is_finished_at(folders[-1])):
        folder = folders[-1]  # killed before it finished (maybe before it wrote its state)
    else:
        folder = model_root / f"round-{len(folders) + 1:02d}"
    number = int(folder.name.removeprefix("round-"))
    parent = store.seed_from(settings.model, resolve_model_dir(settings.model))
    parent_prm = None if prm_id is None else store.seed_from(prm_id, resolve_model_dir(prm_id))
    inputs = {
        "round": number,
        "parent": parent,
        "parent_prm": parent_prm,
        "seed": settings.seed_base + number,
        "traces_since": last_finished_time(model_root),
    }
    return RoundState.open(folder, inputs)  # inputs count only for a round not started yet


def redo_from(state: RoundState, stage: str) -> None:
    """Run `stage` and every later one of this round again (a new recipe on the same data); a
    round that already published is not redone: its version is served, start a new round."""
    if state.outputs("publish").get("published") is not None:
        raise SystemExit(f"round {state.round} already published; --redo-from applies to unpublished rounds")
    names = list(STAGES)
    again = names[names.index(stage) :]
    for name in again:
        for folder in STAGE_FOLDERS[name]:
            shutil.rmtree(state.folder / folder, ignore_errors=True)
    state.rewind(again)
    print(f"round {state.round}: redoing {', '.join(again)}", flush=True)


async def run_round(settings: LearnSettings, redo: str | None = None) -> RoundState:
    model = BUNDLED_MODELS[settings.model]
    if model.task is None:
        raise SystemExit(f"{settings.model} has no task with a verifier: nothing to learn from")
    store = VersionStore(settings.store)
    state = next_round(settings, store, model.prm, resume_last=redo is not None)
    if redo is not None:
        redo_from(state, redo)
    ctx = RoundContext(settings, state, store, get_trainable_task(model.task), model.prm)
    for name, stage in STAGES.items():
        if state.is_done(name):
            continue
        print(f"round {state.round}: {name}", flush=True)
        began = time.monotonic()
        state.complete(name, await stage(ctx), time.monotonic() - began)
    state.finish()
    print(round_summary(state), flush=True)
    return state


def round_summary(state: RoundState) -> str:
    """One line: the data, the gate, what was published, and each stage's minutes."""
    c, gate = state.outputs("collect"), state.outputs("gate")
    ei, dpo, tune = state.outputs("expert_iteration"), state.outputs("dpo"), state.outputs("tune")
    rows = "; ".join(
        f"{r['setting']} {r['parent']:.3f}->{r['candidate']:.3f} ({r['won_lost']}, z {r['z']:+.1f})"
        for r in gate.get("rows", [])
    )
    published = state.outputs("publish").get("published")
    stages = state.body["stages"]
    times = " ".join(f"{name} {stages[name]['seconds'] / 60:.1f}m" for name in STAGES if name in stages)
    data = f"{c.get('problems')} problems, {c.get('solved')} solved ({c.get('sound')} sound)"
    trained = f"{ei.get('examples')} SFT examples, {dpo.get('pairs', 0)} DPO pairs"
    if "temperature" in tune:
        trained += f", search temperature {tune['parent_temperature']}->{tune['temperature']}"
    outcome = f"published v{published}" if published is not None else "not promoted"
    return (
        f"round {state.round}: {data}, {trained} (DPO kept: {tune.get('dpo_kept', False)}); "
        f"{rows}; {outcome} [{times}]"
    )


def settings_from_args(args: argparse.Namespace) -> LearnSettings:
    search = {"strategy": args.strategy, "budget_tokens": args.budget}
    gate = GateSettings(
        greedy_problems=args.gate_problems,
        search={"strategy": args.gate_strategy, "budget_tokens": args.gate_budget, "seed": 0},
        search_problems=args.gate_search_problems,
        concurrency=args.concurrency,
        threads=args.threads,
        max_drop_z=args.max_drop_z,
    )
    return LearnSettings(
        model=args.model,
        store=args.store,
        runs_dir=args.runs_dir,
        trace_db=args.trace_db,
        problems=args.problems,
        search=search,
        concurrency=args.concurrency,
        expert=ExpertIteration(
            args.max_per_problem,
            args.replay,
            FineTune(epochs=args.epochs, lr=args.lr),
            replay_route=args.replay_route,
        ),
        dpo=args.dpo,
        refresh_reward=not args.no_reward_refresh,
        gate=gate,
        temperature=TemperatureTuning(args.temperature_problems, args.temperature_steps)
        if args.temperature_problems
        else None,
        threads=args.threads,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="countdown", help="a bundled policy with a task")
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds to run (default 1; with --every, forever)"
    )
    parser.add_argument("--every", type=parse_every, default=None, help="start a round this often, e.g. 30m")
    parser.add_argument(
        "--store", type=Path, default=Path(".cache/versions"), help="the server's --model-store"
    )
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learn"))
    parser.add_argument(
        "--trace-db",
        type=Path,
        default=Path(".cache/traces.sqlite3"),
        help="the server's traces to learn from",
    )
    parser.add_argument(
        "--problems", type=int, default=LearnSettings.problems, help="self-play problems a round"
    )
    parser.add_argument("--strategy", default="mcts", help="the self-play search")
    parser.add_argument("--budget", type=int, default=1024, help="its token budget")
    parser.add_argument("--gate-strategy", default="mcts", help="the search setting the gate compares")
    parser.add_argument("--gate-budget", type=int, default=1024, help="its token budget")
    parser.add_argument("--max-per-problem", type=int, default=ExpertIteration.max_per_problem)
    parser.add_argument(
        "--replay", type=float, default=ExpertIteration.replay, help="reference solutions per learned example"
    )
    parser.add_argument(
        "--replay-route",
        choices=("random", "preferred"),
        default=ExpertIteration.replay_route,
        help="replay a random reference solution, or the one the policy finds most likely",
    )
    parser.add_argument("--epochs", type=float, default=FineTune.epochs)
    parser.add_argument("--lr", type=float, default=FineTune.lr)
    parser.add_argument("--dpo", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--redo-from",
        choices=list(STAGES),
        default=None,
        help="first run this stage and the later ones of the last (unpublished) round again",
    )
    parser.add_argument("--no-reward-refresh", action="store_true")
    parser.add_argument(
        "--temperature-problems",
        type=int,
        default=TemperatureTuning.problems,
        help="tuning problems per temperature tried for the candidate's search (0: keep the parent's)",
    )
    parser.add_argument(
        "--temperature-steps",
        type=lambda text: tuple(float(x) for x in text.split(",")),
        default=TemperatureTuning.steps,
        help="offsets from the parent's temperature to try, e.g. 0,0.15,0.3",
    )
    parser.add_argument("--gate-problems", type=int, default=GateSettings.greedy_problems, help="greedy, dev")
    parser.add_argument("--gate-search-problems", type=int, default=GateSettings.search_problems)
    parser.add_argument(
        "--max-drop-z",
        type=float,
        default=GateSettings.max_drop_z,
        help="promote unless worse by this paired z",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="searches in flight (the engine batches them)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from_args(args)
    rounds = args.rounds if args.rounds is not None else (None if args.every else 1)
    done = 0
    while rounds is None or done < rounds:
        began = time.monotonic()
        asyncio.run(run_round(replace(settings), args.redo_from if done == 0 else None))
        done += 1
        if args.every and (rounds is None or done < rounds):
            time.sleep(max(0.0, args.every - (time.monotonic() - began)))


if __name__ == "__main__":
    main()
