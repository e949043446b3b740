"""`python -m server [--host H] [--port P] [--api-key K] [--engine E] [--models a,b] ...`

Models: with no --model/--prm/--config every bundled model is served (or those --models names);
with them, your own models are served, plus only the bundled ones --models names.

Every `ServerSettings` field is a flag (`max_n` -> `--max-n`); a flag overrides its `PONDER_*`
environment variable, which overrides the default. Exits 2 on bad settings, 1 if an engine
fails to start, and 0 after a drained shutdown (SIGTERM or SIGINT): in-flight requests get
`--shutdown-timeout` seconds, then streams end with an error event.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import socket
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError
from uvicorn.server import HANDLED_SIGNALS

from engine.memory import fix_mmap_threshold
from server.app import create_app
from server.limits import AdmissionGate
from server.settings import ServerSettings

# Past the drain, time for cut-off streams to send their error event before uvicorn cancels
# whatever still runs (a non-streamed generation) and the engines close.
SHUTDOWN_GRACE_S = 5.0
MODELS_HELP = """\
which models are served:
  no --model/--prm/--config   every bundled model whose weights exist (or those --models names)
  --model/--prm/--config      your own models, plus only the bundled ones --models names
examples:
  python -m server --model ~/SmolLM2-135M-Instruct --prm ~/tiny-prm=my-prm
  python -m server --model ./model.Q4_K_M.gguf=mine --models countdown,countdown-checker
  python -m server --config models.toml      (format: models/bundled.toml)
weights load from safetensors or GGUF only; a missing or unreadable file exits 2 naming it.
"""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which starts the admission gate's drain clock when shutdown begins."""

    def __init__(self, config: uvicorn.Config, gate: AdmissionGate, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.gate = gate
        self.drain_timeout_s = drain_timeout_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.gate.begin_drain(self.drain_timeout_s)
        await super().shutdown(sockets)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="ponder's OpenAI-compatible server",
        epilog=MODELS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, field in ServerSettings.model_fields.items():
        # Values stay strings: ServerSettings validates and converts them, as it does env vars.
        extra = field.json_schema_extra
        repeatable = isinstance(extra, dict) and extra.get("repeatable") is True
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            action="append" if repeatable else "store",
            metavar="PATH[=NAME]" if repeatable else None,
            help=field.description,
        )
    return parser


def settings_from_args(argv: Sequence[str] | None) -> ServerSettings:
    overrides = {
        name: value for name, value in vars(build_parser().parse_args(argv)).items() if value is not None
    }
    return ServerSettings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv)
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    fix_mmap_threshold()  # before any weights or KV are allocated
    server_box: list[uvicorn.Server] = []

    def stop_server() -> None:
        server_box[0].should_exit = True

    try:
        app = create_app(settings, on_engine_failure=stop_server)
    except ValueError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout + SHUTDOWN_GRACE_S),
    )
    server = DrainingServer(config, app.state.ponder.gate, settings.shutdown_timeout)
    server_box.append(server)
    # uvicorn re-raises a caught SIGTERM once it has shut down, to die of the signal (exit 143)
    # under the default handler. With its own handler as the default, the re-raise is a no-op
    # and a drained shutdown exits 0; a signal before uvicorn listens still stops it.
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, server.handle_exit)
    server.run()
    return 1 if app.state.ponder.pool.failure else 0


if __name__ == "__main__":
    sys.exit(main())
