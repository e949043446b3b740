"""Freed tensors go back to the OS once the mmap threshold is fixed (measured in a fresh
process, since glibc's threshold is process state)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, torch
from engine.memory import fix_mmap_threshold

def rss_mib():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmRSS"))
    return int(line.split()[1]) // 1024

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
warm = torch.ones(1 << 21)  # one 8 MiB tensor freed: glibc would raise its threshold past it
del warm
base = rss_mib()
big, kept = [], []
for _ in range(64):
    big.append(torch.ones(1 << 21))  # 8 MiB, freed below
    kept.append(torch.ones(1 << 14))  # 64 KiB between them, kept: the heap cannot shrink past it
del big
print(rss_mib() - base)
"""


def grown_mib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_freed_tensors_leave_rss_once_the_threshold_is_fixed() -> None:
    assert grown_mib("dynamic") > 256  # 512 MiB freed, most of it still resident
    assert grown_mib("fixed") < 32
