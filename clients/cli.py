"""`ponder chat`, `ponder models`, `ponder trace ID` and `ponder bench NAME` against a ponder server.

The server address and key default to `PONDER_BASE_URL` and `PONDER_API_KEY`, so a shell that
exported them once needs no flags. A search's reasoning and summary go to stderr and the answer
to stdout: on a terminal both show, live; `> file` keeps the answer alone.
Exit status: 0 ok, 1 the server refused or could not be reached, 2 a bad command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from collections.abc import Sequence
from typing import Any

import httpx

from clients.bench_command import run_bench
from clients.client import DEFAULT_BASE_URL, PonderAPIError, PonderClient
from clients.common import chosen_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponder", description="talk to a ponder server")
    parser.add_argument("--base-url", default=os.environ.get("PONDER_BASE_URL", DEFAULT_BASE_URL))
    parser.add_argument("--api-key", default=os.environ.get("PONDER_API_KEY"))
    commands = parser.add_subparsers(dest="command", required=True)
    chat = commands.add_parser("chat", help="ask one question, optionally with a test-time search")
    chat.add_argument("question")
    chat.add_argument("--model", default=None, help="default: the first generative model served")
    chat.add_argument("--system", default=None, help="a system message before the question")
    chat.add_argument("--stream", action="store_true", help="print reasoning and tokens as they arrive")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--search", default=None, metavar="STRATEGY", help="e.g. mcts, beam, best_of_n")
    chat.add_argument("--budget", type=int, default=None, help="the search's token budget")
    chat.add_argument("--trace", action="store_true", help="record the search (see `ponder trace`)")
    chat.add_argument("--events", action="store_true", help="with --stream: print the search's tree events")
    commands.add_parser("models", help="list the served models")
    trace = commands.add_parser("trace", help="print a recorded search's chosen path")
    trace.add_argument("trace_id")
    trace.add_argument("--open", action="store_true", help="open the tree in the browser's viewer")
    bench = commands.add_parser("bench", help="run bench/NAME.py (no NAME: list them)")
    bench.add_argument("name", nargs="?")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


def search_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The request's `search` object from --search/--budget/--trace (None: no search)."""
    if args.search is None:
        return None
    options: dict[str, Any] = {"strategy": args.search}
    if args.budget is not None:
        options["budget_tokens"] = args.budget
    if args.trace:
        options["trace"] = True
    return options


def run_chat(client: PonderClient, args: argparse.Namespace) -> None:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.question})
    params = {"max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
    search = search_options(args)
    if not args.stream:
        result = client.chat(messages, model=args.model, search=search, **params)
        print(result.text)
        if result.search is not None:
            print_summary(result.search)
        return
    summary = None
    for delta in client.stream(messages, model=args.model, search=search, **params):
        if delta.search_event is not None and args.events:
            print(f"  . {event_line(delta.search_event)}", file=sys.stderr, flush=True)
        if delta.reasoning_content:
            for line in delta.reasoning_content.splitlines():
                print(f"  {line}", file=sys.stderr, flush=True)
        if delta.content:
            print(delta.content, end="", flush=True)
        summary = delta.search or summary
    print(flush=True)
    if summary is not None:
        print_summary(summary)


def event_line(event: dict[str, Any]) -> str:
    """A tree event in one line: its kind, then its fields (`expand 7 parent=3 text=...`)."""
    fields = " ".join(f"{key}={value!r}" for key, value in event.items() if key not in ("kind", "node"))
    node = f" {event['node']}" if "node" in event else ""
    return f"{event['kind']}{node} {fields}".rstrip()


def print_summary(search: dict[str, Any]) -> None:
    """One line on stderr: what the search did, and how to see its tree."""
    parts = [
        f"{search.get('strategy')}: {search.get('nodes_expanded')} nodes expanded",
        f"{search.get('tokens_generated')} tokens",
        f"prompt {search.get('prompt_tokens_computed')} computed"
        f" / {search.get('prompt_tokens_reused')} reused",
        f"{search.get('prm_calls')} PRM calls",
        f"{search.get('elapsed_s')} s",
    ]
    if search.get("trace_id"):
        parts.append(f"trace {search['trace_id']} (ponder trace {search['trace_id']} --open)")
    print("-- " + ", ".join(parts), file=sys.stderr, flush=True)


def run_models(client: PonderClient) -> None:
    for model in client.models():
        print(f"{model['id']}\t{model.get('kind', 'generate')}\t{model.get('max_model_len') or '-'}")


def run_trace(client: PonderClient, args: argparse.Namespace) -> None:
    """The trace's question, its chosen path step by step, the answer and the search's figures."""
    trace = client.trace(args.trace_id)
    result, stats = trace["tree"], trace["tree"].get("stats", {})
    outcome = {True: "verified", False: "wrong", None: "unchecked"}[trace.get("is_verified")]
    version = f" ({trace['version']})" if trace.get("version") else ""
    print(f"trace {trace['id']}: {trace['strategy']} on {trace['model']}{version}, answer {outcome}")
    users = [m["content"] for m in trace.get("messages", []) if m.get("role") == "user"]
    if users:
        print(f"question: {users[-1]}")
    print("chosen path:")
    for depth, node in enumerate(chosen_path(trace), start=1):
        print(f"  {depth:>2}. {format_step(node)}")
    print("answer:")
    for line in trace["answer"].splitlines() or ["(none)"]:
        print(f"      {line}")
    print(
        f"{result['tree']['num_nodes']} nodes, {stats.get('num_tokens_generated')} tokens generated, "
        f"prompt {stats.get('num_prompt_tokens_computed')} computed"
        f" / {stats.get('num_prompt_tokens_reused')} reused, {stats.get('num_prm_calls')} PRM calls,"
        f" {round(stats.get('elapsed_s', 0.0), 2)} s"
    )
    print(f"viewer: {client.viewer_url(trace['id'], with_key=False)}")
    if args.open:
        webbrowser.open(client.viewer_url(trace["id"]))


def format_step(node: dict[str, Any]) -> str:
    text = node["text"].strip() or "(end of reply)"
    score = "-" if node.get("prm_score") is None else f"{node['prm_score']:.2f}"
    visits = f"  N {node['visits']}  V {node['value']:.2f}" if node.get("visits") else ""
    return f"{text:<32}  prm {score}{visits}  {node['num_tokens']} tok"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "chat" and args.search is None and (args.budget is not None or args.trace):
        parser.error("--budget and --trace need --search STRATEGY")
    if args.command == "bench":
        return run_bench(args.name, args.bench_args)
    try:
        with PonderClient(args.base_url, args.api_key) as client:
            if args.command == "chat":
                run_chat(client, args)
            elif args.command == "trace":
                run_trace(client, args)
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
