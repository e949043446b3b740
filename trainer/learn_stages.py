"""The stages of one learning round: collect, expert iteration, DPO, reward refresh, gate, publish.

Each stage reads what earlier stages left in the round's folder and returns the figures the
round state records. Nothing here is served until `publish`, which goes through the version
store (temp folder, fsync, rename, then the CURRENT pointer): a kill at any point leaves the
last good version served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.embedded import EmbeddedEngine
from engine.options import EngineOptions
from engine.versions import VersionStore, read_manifest
from rewards.prm import detect_style, load_prm
from rewards.tasks import TrainableTask
from search.context import PrmScorer
from trainer.dpo import DpoConfig, sibling_pairs, train_dpo
from trainer.evaluate import offline_search_config
from trainer.expert_iteration import ExpertIteration, best_paths
from trainer.fine_tune import fine_tune_causal_lm
from trainer.gate import GateSettings, VersionUnderTest, decide, evaluate_version
from trainer.preferred_routes import replay_pairs
from trainer.reward_refresh import refresh_checker
from trainer.round_state import RoundState
from trainer.selfplay import Collection, Solved, collect, traced_problems
from trainer.temperature import TemperatureTuning, tune_temperature

DpoMode = Literal["auto", "on", "off"]
TUNING_SEED = 4321
"""Problems (apart from dev and from every round's seed) on which DPO is kept or dropped."""
CHECKER_STYLE = "claim-checker"
REPLAY_SEED_OFFSET = 50_000
"""Replayed reference problems come from seeds apart from every round's self-play seed."""


@dataclass(frozen=True)
class LearnSettings:
    model: str = "countdown"
    store: Path = Path(".cache/versions")
    runs_dir: Path = Path("runs/learn")
    trace_db: Path | None = Path(".cache/traces.sqlite3")
    problems: int = 2000
    search: dict[str, Any] = field(default_factory=lambda: {"strategy": "mcts", "budget_tokens": 1024})
    concurrency: int = 16
    expert: ExpertIteration = ExpertIteration()
    dpo: DpoMode = "auto"
    dpo_config: DpoConfig = DpoConfig()
    dpo_tuning_problems: int = 500
    refresh_reward: bool = True
    gate: GateSettings = GateSettings()
    temperature: TemperatureTuning | None = TemperatureTuning()
    threads: int | None = None
    seed_base: int = 1000


@dataclass
class RoundContext:
    settings: LearnSettings
    state: RoundState
    store: VersionStore
    task: TrainableTask
    prm_id: str | None

    def path(self, name: str) -> Path:
        return self.state.folder / name

    @property
    def parent_policy(self) -> Path:
        return self.store.folder(self.settings.model, int(self.state.body["parent"]))

    @property
    def parent_prm(self) -> Path | None:
        version = self.state.body.get("parent_prm")
        return (
            None if self.prm_id is None or version is None else self.store.folder(self.prm_id, int(version))
        )

    def solved(self) -> list[Solved]:
        """Self-play problems, then problems users searched (recorded traces)."""
        return [*Collection(self.path("collect")).read(), *Collection(self.path("traces")).read()]

    def engine_options(self) -> EngineOptions:
        return EngineOptions(num_threads=self.settings.threads)


async def stage_collect(ctx: RoundContext) -> dict[str, Any]:
    """Self-play on the round's seeded problems through the search code, verifier on."""
    s = ctx.settings
    messages = ctx.task.training_messages(int(ctx.state.body["seed"]), s.problems)
    engine = EmbeddedEngine(s.model, ctx.engine_options(), model_dir=ctx.parent_policy)
    await engine.start()
    search = {**s.search, "seed": ctx.state.body["seed"]}
    config = offline_search_config(s.model, ctx.prm_id, search, engine.card)
    prm = None if ctx.parent_prm is None else PrmScorer(load_prm(ctx.parent_prm))
    try:
        solved = await collect(engine, prm, ctx.task, messages, config, ctx.path("collect"), s.concurrency)
    finally:
        await engine.close()
    since = float(ctx.state.body.get("traces_since", 0.0))
    traced = [] if s.trace_db is None else traced_problems(s.trace_db, s.model, since, ctx.task)
    Collection(ctx.path("traces")).write_part(0, traced)
    return {
        "traces": len(traced),
        "traces_solved": sum(p.is_solved for p in traced),
        "problems": len(solved),
        "solved": sum(p.is_solved for p in solved),
        "sound": sum(any(r.is_sound for r in p.replies) for p in solved),
        "replies": sum(len(p.replies) for p in solved),
        "tokens": sum(p.tokens for p in solved),
        "search": config.strategy,
        "budget_tokens": config.budget_tokens,
    }


async def stage_expert_iteration(ctx: RoundContext) -> dict[str, Any]:
    expert = ctx.settings.expert
    pairs = best_paths(ctx.solved(), expert.max_per_problem, ctx.task.sound_rewrite)
    num_replay = round(expert.replay * len(pairs))
    policy = ctx.parent_policy if expert.replay_route == "preferred" else None
    seed = REPLAY_SEED_OFFSET + int(ctx.state.body["seed"])
    replay = replay_pairs(ctx.task, seed, num_replay, policy, expert.replay_candidates)
    summary = fine_tune_causal_lm(
        ctx.parent_policy, pairs + replay, ctx.path("candidate-ei"), ctx.path("ei-runs"), expert.fine_tune
    )
    return {
        "examples": len(pairs),
        "problems": len({m for m, _ in pairs}),
        "replayed": len(replay),
        **summary,
    }


async def stage_dpo(ctx: RoundContext) -> dict[str, Any]:
    if ctx.settings.dpo == "off":
        return {"skipped": "dpo off"}
    pairs = sibling_pairs(ctx.solved(), ctx.settings.dpo_config.max_pairs_per_problem)
    if len(pairs) < ctx.settings.dpo_config.batch_size:
        return {"skipped": f"only {len(pairs)} pairs"}
    summary = train_dpo(
        ctx.path("candidate-ei"),
        pairs,
        ctx.path("candidate-dpo"),
        ctx.path("dpo-runs"),
        ctx.settings.dpo_config,
    )
    return {"pairs": len(pairs), **summary}


async def stage_reward_refresh(ctx: RoundContext) -> dict[str, Any]:
    served = ctx.parent_prm
    if not ctx.settings.refresh_reward or served is None:
        return {"skipped": "no paired reward model" if served is None else "refresh off"}
    if detect_style(served) != CHECKER_STYLE:
        return {"skipped": f"the paired PRM is {detect_style(served)}; only claim checkers refresh here"}
    return refresh_checker(served, ctx.solved(), ctx.path("checker"), ctx.path("checker-runs"))


def refreshed_prm(ctx: RoundContext) -> Path | None:
    folder = ctx.path("checker")
    return folder if (folder / "config.json").is_file() else ctx.parent_prm


async def choose_candidate(ctx: RoundContext) -> tuple[str, dict[str, Any]]:
    """Expert iteration alone, or with DPO on top: DPO is kept only if it wins greedily on the
    tuning split (paired, same problems), or when forced with `--dpo on`."""
    dpo_folder = ctx.path("candidate-dpo")
    if not (dpo_folder / "config.json").is_file():
        return "candidate-ei", {}
    if ctx.settings.dpo == "on":
        return "candidate-dpo", {}
    tuning = GateSettings(
        greedy_problems=ctx.settings.dpo_tuning_problems,
        search_problems=0,
        concurrency=ctx.settings.gate.concurrency,
        threads=ctx.settings.threads,
        split_seed=TUNING_SEED,
    )
    cells = {}
    for name in ("candidate-ei", "candidate-dpo"):
        under_test = VersionUnderTest(f"round-{ctx.state.round:02d}-{name}-tuning", ctx.path(name), None)
        cells[name] = await evaluate_version(
            under_test, ctx.settings.model, None, ctx.task, tuning, ctx.path("tuning")
        )
    verdict = decide(cells["candidate-dpo"], cells["candidate-ei"], max_drop_z=0.0)
    row = verdict.rows[0]
    keep = row["candidate"] > row["parent"]
    return ("candidate-dpo" if keep else "candidate-ei"), {"dpo_vs_ei_greedy_tuning": row, "dpo_kept": keep}


def candidate_under_test(ctx: RoundContext, chosen: str) -> VersionUnderTest:
    return VersionUnderTest(f"round-{ctx.state.round:02d}-{chosen}", ctx.path(chosen), refreshed_prm(ctx))


async def stage_tune(ctx: RoundContext) -> dict[str, Any]:
    """Chooses the candidate (DPO kept or not), then its search temperature (`trainer.temperature`),
    both on the tuning split, so that the gate's dev split judges one finished candidate."""
    s = ctx.settings
    chosen, dpo_figures = await choose_candidate(ctx)
    if s.temperature is None or not s.temperature.problems:
        return {"chosen": chosen, **dpo_figures}
    figures = await tune_temperature(
        candidate_under_test(ctx, chosen),
        ctx.parent_policy,
        s.model,
        ctx.prm_id,
        ctx.task,
        s.gate,
        s.temperature,
        TUNING_SEED,
        ctx.path("tuning"),
    )
    return {"chosen": chosen, **dpo_figures, **figures}


async def stage_gate(ctx: RoundContext) -> dict[str, Any]:
    s = ctx.settings
    tuned = ctx.state.outputs("tune")
    chosen = str(tuned["chosen"])
    evals = s.runs_dir / s.model / "evals"
    parent_label = f"{s.model}-v{ctx.state.body['parent']}"
    parent = VersionUnderTest(parent_label, ctx.parent_policy, ctx.parent_prm)
    candidate = candidate_under_test(ctx, chosen)
    parent_cells = await evaluate_version(parent, s.model, ctx.prm_id, ctx.task, s.gate, evals)
    candidate_cells = await evaluate_version(candidate, s.model, ctx.prm_id, ctx.task, s.gate, evals)
    verdict = decide(candidate_cells, parent_cells, s.gate.max_drop_z)
    print(verdict.summary(), flush=True)
    return {"chosen": chosen, "promote": verdict.promote, "rows": verdict.rows}


def _published_by(store: VersionStore, model_id: str, tag: str) -> int | None:
    """The version this round already published (a kill after publishing must not publish twice)."""
    for version in store.versions(model_id):
        manifest = read_manifest(store.folder(model_id, version))
        if manifest is not None and manifest.note == tag:
            return version
    return None


def _publish_once(
    ctx: RoundContext, model_id: str, folder: Path, parent: int | None, data: dict[str, Any]
) -> int:
    tag = f"learn {ctx.state.folder.name} of {ctx.settings.model}"
    version = _published_by(ctx.store, model_id, tag)
    if version is None:
        gate = ctx.state.outputs("gate")
        version = ctx.store.publish(model_id, folder, parent, data=data, eval=gate, note=tag).version
    elif ctx.store.current(model_id) != version:
        ctx.store.set_current(model_id, version)
    return version


async def stage_publish(ctx: RoundContext) -> dict[str, Any]:
    gate = ctx.state.outputs("gate")
    if not gate.get("promote"):
        return {"published": None}
    data = {
        "round": ctx.state.round,
        "seed": ctx.state.body["seed"],
        "collect": ctx.state.outputs("collect"),
        "expert_iteration": ctx.state.outputs("expert_iteration"),
        "dpo": ctx.state.outputs("dpo"),
        "reward_refresh": ctx.state.outputs("reward_refresh"),
        "tune": ctx.state.outputs("tune"),
    }
    published: dict[str, Any] = {}
    prm = refreshed_prm(ctx)
    if ctx.prm_id is not None and prm is not None and prm != ctx.parent_prm:
        parent_prm = ctx.state.body.get("parent_prm")
        published["prm_version"] = _publish_once(ctx, ctx.prm_id, prm, parent_prm, data)
    policy = ctx.path(gate["chosen"])
    published["published"] = _publish_once(ctx, ctx.settings.model, policy, ctx.state.body["parent"], data)
    return published


STAGE_FOLDERS = {
    "collect": ("collect", "traces"),
    "expert_iteration": ("candidate-ei", "ei-runs"),
    "dpo": ("candidate-dpo", "dpo-runs"),
    "reward_refresh": ("checker", "checker-runs"),
    "tune": ("tuning",),
    "gate": ("evals",),
    "publish": (),
}
"""What each stage leaves in the round's folder (removed when the stage is redone)."""

STAGES = {
    "collect": stage_collect,
    "expert_iteration": stage_expert_iteration,
    "dpo": stage_dpo,
    "reward_refresh": stage_reward_refresh,
    "tune": stage_tune,
    "gate": stage_gate,
    "publish": stage_publish,
}
