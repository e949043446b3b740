"""A long prompt no longer stalls everyone: with a several-thousand-token SmolLM2 prompt being
prefilled, a short countdown request and a short SmolLM2 request both finish before the long
prompt's first token. Ordering, not wall time: on the old engine (one-piece prefill, an unfair
lock) both finished after it."""

import asyncio
from collections.abc import Iterator

import pytest
import torch

from engine.embedded import EmbeddedEngine
from engine.options import EngineOptions
from engine.protocol import ChatMessage, SamplingParams
from rewards.countdown.problems import Problem, format_prompt

from .conftest import EngineRunner

LONG_PROMPT_TOKENS = 3000  # about 12 chunks; the short requests need 3 to 5 steps
SHORT = SamplingParams(max_new_tokens=4, temperature=0, ignore_eos=True)
LONG = SamplingParams(max_new_tokens=4, temperature=0, ignore_eos=True)
FILLER = "Every harbour keeps a ledger of the ships that came in, what they carried and when. "


@pytest.fixture(scope="module")
def countdown(runner: EngineRunner) -> Iterator[EmbeddedEngine]:
    """A countdown engine on the SmolLM2 runner's event loop: two models, one compute lock."""
    engine = EmbeddedEngine("countdown", EngineOptions())
    runner.run(engine.start())
    yield engine
    runner.run(engine.close())


def long_prompt(runner: EngineRunner) -> list[int]:
    tokens_per_filler = len(runner.engine.tokenize(FILLER * 10)) / 10  # as repeated, not alone
    repeats = int(LONG_PROMPT_TOKENS / tokens_per_filler) + 2
    return runner.engine.apply_chat_template([ChatMessage("user", FILLER * repeats)])


async def finish_order(smollm2: EmbeddedEngine, countdown: EmbeddedEngine, long_ids: list[int]) -> list[str]:
    """Sends the long prompt, then (once its prefill has begun) the two short requests; returns
    the order of: each short request finishing, and the long request's first token."""
    order: list[str] = []
    long_started = asyncio.Event()
    short_smollm2 = smollm2.apply_chat_template([ChatMessage("user", "Name a colour.")])
    short_countdown = countdown.apply_chat_template(
        [ChatMessage("user", format_prompt(Problem((3, 5, 7, 9), 24)))]
    )

    async def long_request() -> None:
        async for delta in smollm2.stream(long_ids, LONG, on_start=lambda _: long_started.set()):
            if delta.token_ids and "long first token" not in order:
                order.append("long first token")

    async def short_request(engine: EmbeddedEngine, prompt: list[int], label: str) -> None:
        await long_started.wait()
        await engine.generate([prompt], SHORT)
        order.append(label)

    await asyncio.gather(
        long_request(),
        short_request(countdown, short_countdown, "countdown"),
        short_request(smollm2, short_smollm2, "smollm2 short"),
    )
    return order


def test_short_requests_finish_before_a_long_prompts_first_token(runner, countdown):
    long_ids = long_prompt(runner)
    assert len(long_ids) > LONG_PROMPT_TOKENS
    order = runner.run(finish_order(runner.engine, countdown, long_ids))
    assert sorted(order) == ["countdown", "long first token", "smollm2 short"]
    assert order[-1] == "long first token", order


def test_each_model_runs_on_its_own_threads(runner: EngineRunner, countdown: EmbeddedEngine) -> None:
    """The bundled config puts the 3.4M policy on one core and leaves SmolLM2 every core."""
    assert countdown._worker is not None and runner.engine._worker is not None
    assert (countdown._worker.threads, runner.engine._worker.threads) == (1, None)
    default = torch.get_num_threads()  # this thread's, which built both workers
    assert (countdown._worker.torch_threads, runner.engine._worker.torch_threads) == (1, default)
