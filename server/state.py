"""Everything a request handler needs, built once per app and reached through one dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from server.hot_swap import HotSwapper
from server.limits import AdmissionGate
from server.metrics import ServerMetrics
from server.model_pool import ModelPool
from server.search_services import SearchServices
from server.settings import ServerSettings


@dataclass
class ServerState:
    settings: ServerSettings
    pool: ModelPool
    gate: AdmissionGate
    metrics: ServerMetrics
    search: SearchServices
    swapper: HotSwapper


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.ponder
    return state


StateDep = Annotated[ServerState, Depends(get_state)]
