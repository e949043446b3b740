"""Hot swap under load: N clients for T seconds while a new version of the policy is published.

    python -m bench.hot_swap [--clients 32] [--seconds 300] [--prm] [--watch] [--threads 1]
        [--out bench/results/hot_swap.json]

Starts `python -m server` on a fresh version store, runs closed-loop clients (plain and search,
streaming and not: `bench.load_clients`), and at T/2 publishes the served weights again as the
next version and asks `/v1/admin/reload` (or, with --watch, leaves it to the store watcher).
The swap is right when there are 0 errors, 0 dropped streams, and every client's
`system_fingerprint` moves from the old version to the new one once and never back.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load_clients import (
    REQUEST_KINDS,
    Outcome,
    last_fingerprints,
    regressions,
    run_clients,
    transitions,
)
from bench.report import print_table, write_json
from bench.server_process import start_server_process, wait_until_ready
from engine.versions import Manifest, VersionStore

ADMIN_KEY = "sk-bench-admin"


@dataclass(frozen=True)
class SwapTarget:
    """A running server and the store it serves from."""

    base_url: str
    store: Path
    admin_key: str
    api_key: str | None = None
    model: str = "countdown"

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class HotSwapReport:
    outcomes: list[Outcome]
    swap: dict[str, Any] = field(default_factory=dict)

    @property
    def num_errors(self) -> int:
        return sum(o.error is not None for o in self.outcomes)

    @property
    def num_dropped(self) -> int:
        return sum(o.is_dropped for o in self.outcomes)

    def rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for kind in (*REQUEST_KINDS, "all"):
            done = [o for o in self.outcomes if kind in ("all", o.kind)]
            latencies = sorted(o.latency_s for o in done) or [0.0]
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            errors, dropped = sum(o.error is not None for o in done), sum(o.is_dropped for o in done)
            rows.append(
                [kind, len(done), errors, dropped, f"{statistics.median(latencies):.2f}", f"{p99:.2f}"]
            )
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.outcomes),
            "errors": self.num_errors,
            "dropped_streams": self.num_dropped,
            "fingerprint_transitions": transitions(self.outcomes),
            "fingerprint_regressions": regressions(self.outcomes),
            "fingerprints": sorted({o.fingerprint for o in self.outcomes if o.fingerprint}),
            "clients_ending_on_new": sum(
                fp == self.swap.get("label") for fp in last_fingerprints(self.outcomes).values()
            ),
            "swap": self.swap,
            "first_errors": [o.error for o in self.outcomes if o.error][:5],
        }


def publish_copy(store: VersionStore, model_id: str, note: str) -> Manifest:
    """Publish the served version's files again as the next version: the same weights under a
    new label, since what is measured is the swap, not the weights."""
    current, folder = store.current(model_id), store.current_folder(model_id)
    if folder is None:
        raise ValueError(f"the store at {store.root} serves no version of {model_id}")
    return store.publish(model_id, folder, parent=current, note=note)


async def publish_and_reload(
    target: SwapTarget, delay_s: float, use_watcher: bool, started: float
) -> dict[str, Any]:
    await asyncio.sleep(delay_s)
    manifest = await asyncio.to_thread(
        publish_copy, VersionStore(target.store), target.model, "bench.hot_swap"
    )
    swap: dict[str, Any] = {"label": manifest.label, "published_at_s": round(time.monotonic() - started, 3)}
    if not use_watcher:
        async with httpx.AsyncClient(base_url=target.base_url, timeout=120.0) as http:
            response = await http.post(
                "/v1/admin/reload", json={"model": target.model}, headers=target.headers(target.admin_key)
            )
        swap |= {"reload_status": response.status_code, "reloaded_at_s": round(time.monotonic() - started, 3)}
        swap["reload"] = response.json()
    return swap


async def run_hot_swap(
    target: SwapTarget,
    num_clients: int,
    seconds: float,
    publish_at_s: float,
    use_prm: bool,
    use_watcher: bool,
) -> HotSwapReport:
    """Clients for `seconds`, a publish (and reload) `publish_at_s` into them."""
    started = time.monotonic()
    outcomes, swap = await asyncio.gather(
        run_clients(
            target.base_url, target.headers(target.api_key), target.model, num_clients, seconds, use_prm
        ),
        publish_and_reload(target, publish_at_s, use_watcher, started),
    )
    return HotSwapReport(outcomes, swap)


def start_server(port: int, store: Path, args: argparse.Namespace, log_path: Path) -> subprocess.Popen[bytes]:
    models = "countdown,countdown-checker" if args.prm else "countdown"
    flags = {
        "--port": port,
        "--models": models,
        "--model-store": store,
        "--admin-key": ADMIN_KEY,
        "--watch-interval-s": 0.5 if args.watch else 0,
        "--trace-db": store.parent / "traces.sqlite3",
        "--num-threads": args.threads,
        "--log-level": "warning",
    }
    return start_server_process(flags, log_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server's engine")
    parser.add_argument("--prm", action="store_true", help="searches score steps with countdown-checker")
    parser.add_argument("--watch", action="store_true", help="let the store watcher swap, no reload call")
    parser.add_argument("--out", default="bench/results/hot_swap.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ponder-hot-swap-") as tmp:
        store, log_path = Path(tmp) / "versions", Path(tmp) / "server.log"
        base_url = f"http://127.0.0.1:{args.port}"
        process = start_server(args.port, store, args, log_path)
        try:
            wait_until_ready(base_url, process, log_path)
            target = SwapTarget(base_url, store, ADMIN_KEY)
            report = asyncio.run(
                run_hot_swap(target, args.clients, args.seconds, args.seconds / 2, args.prm, args.watch)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    print_table(["requests", "count", "errors", "dropped", "p50 s", "p99 s"], report.rows())
    summary = report.summary()
    for key in (
        "fingerprints",
        "fingerprint_transitions",
        "fingerprint_regressions",
        "clients_ending_on_new",
    ):
        print(f"{key}: {summary[key]}")
    config = {"clients": args.clients, "seconds": args.seconds, "prm": args.prm, "watch": args.watch}
    write_json(
        args.out, {"config": config, "summary": summary, "outcomes": [asdict(o) for o in report.outcomes]}
    )


if __name__ == "__main__":
    main()
