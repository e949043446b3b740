"""Search widths sized to the token budget, for the knobs a request leaves unset.

Fixed widths (8 samples, 16 simulations) either leave most of a large budget unspent or split a
small one into paths too short to finish a reply. Sized from the budget and the model's typical
reply length, `{"strategy": "mcts", "budget_tokens": 4096}` means four times the search of 1024.
The strategy bench sizes its cells with this same function, so the server runs what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from search.config import SearchLimits

DEFAULT_REPLY_TOKENS = 256
"""For a model that does not say how long its replies run (a chat model's answer, roughly)."""
MCTS_EXPANSIONS = 3
"""MCTS widens progressively (more children as visits grow), so each expansion samples few.
With rollouts and the bundled checker PRM, on 150 tuning problems at 256/512/1024 tokens: k=1
0.220/0.260/0.320, k=2 0.227/0.267/0.347, k=3 0.240/0.280/0.367, k=4 0.227/0.260/0.320."""
TOKENS_PER_SIMULATION = 8
"""MCTS runs as many simulations as the budget could pay for if each cost only a few tokens;
the budget, not the count, is what stops it."""


def widths_for_budget(
    strategy: str,
    budget_tokens: int,
    reply_tokens: int,
    limits: SearchLimits,
    given: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """The width knobs not in `given`, such that the parallel paths can each finish a reply of
    `reply_tokens` within the budget, each clipped to the server's limit. Expansions per beam
    follow the beam width actually used, given or sized."""
    given = given or {}
    num_paths = max(2, budget_tokens // reply_tokens)
    beam_width: int = given.get("beam_width", min(limits.beam_width, max(1, round(math.sqrt(num_paths)))))
    expansions = MCTS_EXPANSIONS if strategy == "mcts" else max(2, num_paths // beam_width)
    widths = {
        "n": num_paths,
        "beam_width": beam_width,
        "expansions": expansions,
        "simulations": max(8, budget_tokens // TOKENS_PER_SIMULATION),
    }
    return {knob: min(value, getattr(limits, knob)) for knob, value in widths.items() if knob not in given}
