"""The top entries of a py-spy profile: where a search's samples were, by self and cumulative count.

    py-spy record --nolineno --threads --format raw -o prof.txt -- python -m bench.speed ...
    python -m bench.profile_top prof.txt [--top 25]

py-spy's raw format is one collapsed stack a line, root first, then its sample count:
`thread (0x1);run (engine/worker.py);_decode_step (engine/worker.py) 42`. A frame's self count
is the samples where it was the leaf; its cumulative count the samples whose stack held it
(once per stack, so recursion does not count twice).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    total: int
    self_counts: Counter[str]
    cumulative_counts: Counter[str]


def parse_collapsed(lines: Iterable[str], exclude: tuple[str, ...] = ()) -> Profile:
    """Self and cumulative sample counts per frame of collapsed stacks; blank lines are skipped,
    and so are stacks with a frame containing any `exclude` text (start-up imports, say)."""
    self_counts: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            raise ValueError(f"not a collapsed stack line: {line[:80]!r}")
        count, frames = int(count_text), stack.split(";")
        if any(text in frame for frame in frames for text in exclude):
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            cumulative[frame] += count
    return Profile(total, self_counts, cumulative)


def top_rows(counts: Counter[str], total: int, limit: int) -> list[tuple[str, int, float]]:
    """The `limit` largest frames as (frame, samples, percent of all samples)."""
    return [(frame, n, 100.0 * n / total if total else 0.0) for frame, n in counts.most_common(limit)]


def markdown(profile: Profile, limit: int) -> str:
    """Two markdown tables, self then cumulative, for docs/speed.md."""
    parts: list[str] = []
    for title, counts in (("self", profile.self_counts), ("cumulative", profile.cumulative_counts)):
        parts.append(f"| {title} % | samples | frame |\n|---:|---:|---|")
        for frame, n, percent in top_rows(counts, profile.total, limit):
            parts.append(f"| {percent:.1f} | {n} | `{frame}` |")
        parts.append("")
    return f"{profile.total} samples\n\n" + "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--exclude", action="append", default=[], help="drop stacks with a frame containing this text"
    )
    args = parser.parse_args(argv)
    lines = args.profile.read_text().splitlines()
    print(markdown(parse_collapsed(lines, tuple(args.exclude)), args.top))


if __name__ == "__main__":
    main()
