"""`ponder chat "question"` and `ponder models` against a running ponder server.

The server address and key default to `PONDER_BASE_URL` and `PONDER_API_KEY`, so a shell that
exported them once needs no flags. Exit status: 0 ok, 1 the server refused or could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import httpx

from clients.client import DEFAULT_BASE_URL, PonderAPIError, PonderClient


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponder", description="talk to a ponder server")
    parser.add_argument("--base-url", default=os.environ.get("PONDER_BASE_URL", DEFAULT_BASE_URL))
    parser.add_argument("--api-key", default=os.environ.get("PONDER_API_KEY"))
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="ask one question")
    chat.add_argument("question")
    chat.add_argument("--model", default=None, help="default: the first generative model served")
    chat.add_argument("--system", default=None, help="a system message before the question")
    chat.add_argument("--stream", action="store_true", help="print tokens as they arrive")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    commands.add_parser("models", help="list the served models")
    return parser


def run_chat(client: PonderClient, args: argparse.Namespace) -> None:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.question})
    params = {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
    if args.stream:
        for text in client.stream_chat(messages, model=args.model, **params):
            print(text, end="", flush=True)
        print()
        return
    print(client.chat(messages, model=args.model, **params).text)


def run_models(client: PonderClient) -> None:
    for model in client.models():
        print(f"{model['id']}\t{model.get('kind', 'generate')}\t{model.get('max_model_len') or '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with PonderClient(args.base_url, args.api_key) as client:
            if args.command == "chat":
                run_chat(client, args)
            else:
                run_models(client)
    except PonderAPIError as exc:
        print(f"ponder: the server answered {exc.status}: {exc.message}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"ponder: cannot reach {args.base_url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
