"""Collect: solve a task's problems through the server's own search code and keep every reply.

Self-play problems come from the task's generator (a fixed seed per round, never the dev split).
Training may use the exact verifier as the outcome reward, so searches run with `verifier: true`
and stop at the first verified answer; serving leaves it off. Every finished reply in a search
tree is kept with its outcome, not just the chosen one: failures are the rejected side of DPO
pairs and the checker's refresh data.

Results go to numbered JSONL parts, each written whole (temp file, fsync, rename), so a killed
collection resumes at the first missing part and never reads a torn one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from engine.protocol import ChatMessage, Engine
from engine.versions import write_atomically
from rewards.tasks import TrainableTask
from search.config import SearchConfig
from search.context import PrmScorer, SearchContext
from search.runner import run_search

PART_SIZE = 64
"""Problems per JSONL part: what a kill can cost."""


@dataclass(frozen=True)
class Reply:
    text: str
    steps: list[str]
    is_verified: bool
    is_sound: bool
    """Verified with every step right (`Task.is_sound`)."""


@dataclass(frozen=True)
class Solved:
    """One problem's search: every distinct finished reply, and whether the answer verified."""

    message: str
    replies: list[Reply]
    is_answer_verified: bool
    tokens: int
    source: str = "selfplay"

    @property
    def is_solved(self) -> bool:
        return any(r.is_verified for r in self.replies)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Solved:
        raw = json.loads(line)
        raw["replies"] = [Reply(**r) for r in raw["replies"]]
        return cls(**raw)


def write_json_atomically(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def finished_replies(task: TrainableTask, message: str, leaves: list[tuple[str, list[str]]]) -> list[Reply]:
    """Distinct (text, steps) replies graded by the task, in the order first seen."""
    seen: dict[str, Reply] = {}
    for text, steps in leaves:
        if text.strip() and text not in seen:
            verified = bool(task.verify(message, text))
            seen[text] = Reply(text, steps, verified, verified and task.is_sound(message, text))
    return list(seen.values())


async def solve_one(
    engine: Engine, prm: PrmScorer | None, task: TrainableTask, message: str, config: SearchConfig
) -> Solved:
    prompt_ids = engine.apply_chat_template([ChatMessage("user", message)])
    ctx = SearchContext(engine, message, prm=prm, verifier=lambda reply: bool(task.verify(message, reply)))
    result = await run_search(ctx, prompt_ids, replace(config, verifier=True))
    leaves = [(n.reply_text(), n.step_texts()) for n in result.tree.terminal_leaves() if not n.is_cut]
    replies = finished_replies(task, message, leaves)
    answer_ok = bool(task.verify(message, result.text))
    return Solved(message, replies, answer_ok, result.stats.num_tokens_generated)


@dataclass
class Collection:
    """Where one round's collected problems live: `folder/part-00000.jsonl`, ..."""

    folder: Path
    num_parts_done: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".part-*"):  # a part a kill interrupted
            stale.unlink()
        self.num_parts_done = len(sorted(self.folder.glob("part-*.jsonl")))

    def write_part(self, index: int, solved: list[Solved]) -> None:
        text = "".join(s.to_json() + "\n" for s in solved)
        write_atomically(self.folder / f"part-{index:05d}.jsonl", text)

    def read(self) -> Iterator[Solved]:
        for path in sorted(self.folder.glob("part-*.jsonl")):
            for line in path.read_text().splitlines():
                yield Solved.from_json(line)


async def collect(
    engine: Engine,
    prm: PrmScorer | None,
    task: TrainableTask,
    messages: list[str],
    config: SearchConfig,
    folder: Path,
    concurrency: int,
) -> list[Solved]:
    """Search every message (resuming after the parts already written); returns all of them."""
    collection = Collection(folder)
    gate = asyncio.Semaphore(concurrency)
    start = collection.num_parts_done * PART_SIZE
    progress = tqdm(total=len(messages), initial=min(start, len(messages)), desc="collect", mininterval=10)

    async def one(index: int, message: str) -> Solved:
        async with gate:
            seeded = replace(config, seed=None if config.seed is None else config.seed + index)
            solved = await solve_one(engine, prm, task, message, seeded)
        progress.update()
        return solved

    for begin in range(start, len(messages), PART_SIZE):
        chunk = messages[begin : begin + PART_SIZE]
        solved = await asyncio.gather(*(one(begin + i, m) for i, m in enumerate(chunk)))
        collection.write_part(begin // PART_SIZE, list(solved))
    progress.close()
    return list(collection.read())


def traced_problems(trace_db: Path, model: str, since: float, task: TrainableTask) -> list[Solved]:
    """Searches users ran on `model` after `since` that pose a problem of `task`, each reply
    graded again by the task (a trace records the verifier's outcome only where it ran)."""
    if not trace_db.is_file():
        return []
    from server.trace_store import TraceStore

    store = TraceStore(trace_db)
    solved: list[Solved] = []
    try:
        for record in store.iter_records(model, since):
            message = next((m["content"] for m in reversed(record.messages) if m.get("role") == "user"), "")
            if task.verify(message, "") is None:
                continue
            replies = finished_replies(task, message, [(r.text, r.steps) for r in record.replies])
            answer_ok = bool(task.verify(message, record.answer))
            tokens = int(record.tree.get("stats", {}).get("num_tokens_generated", 0))
            solved.append(Solved(message, replies, answer_ok, tokens, source=f"trace:{record.id}"))
    finally:
        store.close()
    return solved
