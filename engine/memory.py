"""Hand freed tensor memory back to the OS.

glibc serves a block of at least its mmap threshold with its own mapping, unmapped on free; a
smaller block comes from a heap that is rarely trimmed. The threshold starts at 128 KiB but,
each time a mapped block is freed, rises to that block's size (up to 32 MiB), so after the
first few freed KV tensors every tensor up to 32 MiB lands in the heap and stays in RSS after it
is freed. Under the 64-client load bench (100 s) the server's RSS grew 520 -> 2,097 MiB; with the
threshold fixed at 1 MiB (`mallopt` turns the adjustment off) 505 -> 1,450 MiB, at the same
throughput (298 requests against 284).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 1 << 20


def fix_mmap_threshold(num_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library has no mallopt."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None or not mallopt(M_MMAP_THRESHOLD, num_bytes):
        log.info("could not fix the malloc mmap threshold: freed tensors may stay in RSS")
        return False
    return True
