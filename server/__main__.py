"""`python -m server [--host H] [--port P] [--api-key K] [--engine E] [--models a,b] ...`

Every `ServerSettings` field is a flag (`max_n` -> `--max-n`); a flag overrides its `PONDER_*`
environment variable, which overrides the default. Exits 2 on bad settings and 1 if an engine
fails to start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from server.app import create_app
from server.settings import ServerSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="ponder's OpenAI-compatible server")
    for name, field in ServerSettings.model_fields.items():
        # Values stay strings: ServerSettings validates and converts them, as it does env vars.
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=field.description)
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
    server_box: list[uvicorn.Server] = []

    def stop_server() -> None:
        server_box[0].should_exit = True

    try:
        app = create_app(settings, on_engine_failure=stop_server)
    except ValueError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    server_box.append(uvicorn.Server(config))
    server_box[0].run()
    return 1 if app.state.ponder.pool.failure else 0


if __name__ == "__main__":
    sys.exit(main())
