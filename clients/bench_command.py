"""`ponder bench NAME [args]`: a shortcut to the benches, `python -m bench.NAME args` (what
`./run bench NAME` runs, in the same environment as the `ponder` command)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from collections.abc import Sequence

NOT_BENCHES = frozenset({"report"})
"""Modules of the bench package that are helpers, not benches."""


def bench_names() -> list[str]:
    """The benches this installation has: every module of `bench` but helpers."""
    import bench

    modules = (module.name for module in pkgutil.iter_modules(bench.__path__))
    return sorted(name for name in modules if not name.startswith("_") and name not in NOT_BENCHES)


def run_bench(name: str | None, args: Sequence[str]) -> int:
    """Run one bench in a child Python and return its exit status; without a name, list them
    (0); an unknown name lists them on stderr (2)."""
    names = bench_names()
    if name is None:
        print("benches (ponder bench NAME --help):\n" + "\n".join(f"  {n}" for n in names))
        return 0
    if name not in names:
        print(f"ponder: no bench '{name}'; benches: {', '.join(names)}", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", f"bench.{name}", *args])
