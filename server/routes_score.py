"""`POST /v1/score`: a served PRM's step scores, and their aggregate, for candidate replies.

Named and shaped after vLLM's scoring API: vLLM's `/score` (also `/v1/score`) takes a query and
candidate texts and answers `{"object": "list", "data": [{"index", "object": "score", "score"}]}`,
one score per candidate; its `/pooling` returns a reward model's raw per-token output. A PRM
here is asked what `/score` asks (how good is each candidate for this question) but computes it
the `/pooling` way (a score per step), so the response keeps `/score`'s shape and adds each
reply's `steps` and `step_scores`. The question is `prompt`, or the last user turn of
`messages` (what a search's PRM sees); a reply given as a string is split into steps by the
task (`task`, else the PRM's configured task, else `plain`: paragraphs); a list is the steps.

Errors are OpenAI envelopes: 404 for a model that is not served, 400 for a served model that is
not a PRM, and 400 naming the field for a malformed body (as every route here: OpenAI's status
for schema errors, where FastAPI's default would be 422).
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.models import model_task, recommended_aggregate
from rewards.aggregation import aggregate
from rewards.tasks import DEFAULT_TASK, TASKS, get_task
from server.errors import invalid_request, model_not_found
from server.protocol import ChatMessageIn
from server.responses import now_s
from server.state import StateDep

MAX_REPLIES = 64
"""Replies per request: one PRM batch, enough for best-of-N at the sizes searches use."""
DEFAULT_AGGREGATE = "min"
"""A PRM's aggregation when neither the request nor the model table names one: the weakest
step, the usual best-of-N choice (search.config's default too)."""

Aggregation = Literal["min", "last", "product", "mean"]

router = APIRouter()


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="a served PRM (kind 'reward' in /v1/models)")
    prompt: str | None = Field(None, description="the question the replies answer")
    messages: list[ChatMessageIn] | None = Field(None, description="or a chat: its last user turn")
    replies: list[str | list[str]] = Field(
        min_length=1, max_length=MAX_REPLIES, description="candidate replies: text, or a list of steps"
    )
    aggregate: Aggregation | None = Field(None, description="how step scores combine; unset: the PRM's")
    task: str | None = Field(
        None,
        description=f"splits text replies into steps: {sorted(TASKS)}",
        json_schema_extra={"enum": [*sorted(TASKS), None]},  # the schema names what the check allows
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str | None) -> str | None:
        if value is not None and value not in TASKS:
            raise ValueError(f"unknown task {value!r}; valid tasks: {sorted(TASKS)}")
        return value

    def question(self) -> str:
        """The PRM's problem statement; a 400 naming `prompt` unless exactly one form is given."""
        if (self.prompt is None) == (self.messages is None):
            raise invalid_request("Give exactly one of 'prompt' and 'messages'.", "prompt", "invalid_value")
        if self.prompt is not None:
            return self.prompt
        return next((m.text() for m in reversed(self.messages or []) if m.role == "user"), "")


class ScoreData(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float | None = Field(description="the aggregate of step_scores; null for a reply with no step")
    steps: list[str]
    step_scores: list[float]


class ScoreResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    aggregate: str
    task: str
    data: list[ScoreData]


@router.post("/v1/score")
async def score(body: ScoreRequest, state: StateDep) -> ScoreResponse:
    """Score each reply with a served PRM: per-step scores and their aggregate (see module)."""
    plan = state.pool.plan
    if body.model in plan.generate_ids:  # the checks a client can act on, before any work
        raise invalid_request(
            f"The model '{body.model}' is not a process reward model; /v1/score needs one of "
            f"{list(plan.reward_ids)}.",
            "model",
            "model_not_prm",
        )
    if body.model not in plan.reward_ids:
        raise model_not_found(body.model, plan.model_ids)
    question = body.question()
    task = get_task(body.task or model_task(body.model) or DEFAULT_TASK)
    how = body.aggregate or recommended_aggregate(body.model) or DEFAULT_AGGREGATE
    paths = [reply if isinstance(reply, list) else task.split_steps(reply) for reply in body.replies]
    scorer = await state.search.scorer(body.model)
    step_scores = await scorer.score(question, paths)
    data = [
        ScoreData(
            index=i, score=aggregate(s, how) if s else None, steps=steps, step_scores=[float(x) for x in s]
        )
        for i, (steps, s) in enumerate(zip(paths, step_scores, strict=True))
    ]
    return ScoreResponse(
        id=f"score-{uuid.uuid4().hex}",
        created=now_s(),
        model=body.model,
        aggregate=how,
        task=task.name,
        data=data,
    )
