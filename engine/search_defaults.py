"""What a model recommends for the search knobs a request leaves unset, in one function, so the
server, the strategy bench and the learner's gate all run the same search for the same request.

How hot a policy should sample to explore, how long its replies run, which task it answers and
how its PRM's step scores combine best are properties of the models (engine.models), not of
the search; search receives them as `ModelDefaults` and never reads the model table itself.
"""

from __future__ import annotations

from engine.models import find_model, model_task, recommended_aggregate, reply_tokens
from engine.protocol import ModelCard
from search.api import ModelDefaults


def search_defaults(
    model_id: str, prm_id: str | None, temperature: float | None = None, card: ModelCard | None = None
) -> ModelDefaults:
    """`temperature` (the request's), else the model's recommended one; its reply length and
    task; the aggregation recommended for `prm_id`, the PRM that guides the search (None: no
    PRM). A served model's `card` is preferred to the bundled table for what both say."""
    if temperature is None:
        sampling = card.sampling_defaults if card is not None else dict(_bundled_sampling(model_id))
        temperature = sampling.get("temperature")
    reply = card.reply_tokens if card is not None else reply_tokens(model_id)
    return ModelDefaults(
        temperature=temperature,
        reply_tokens=reply,
        aggregate=None if prm_id is None else recommended_aggregate(prm_id),
        task=model_task(model_id),
    )


def _bundled_sampling(model_id: str) -> tuple[tuple[str, float], ...]:
    model = find_model(model_id)
    return () if model is None else model.sampling
