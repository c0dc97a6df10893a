"""Checksums of snapshot values: crc32 of the bytes, several values in parallel.

zlib releases the GIL on large buffers, so a small thread pool spreads the checksums of a
snapshot's tensors over the cores (the checksum is the dominant cost of a swap on CPU).
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ALGORITHM = "crc32"
PARALLEL_MIN_BYTES = 1 << 20
_pool: ThreadPoolExecutor | None = None


def checksum(data: Any) -> int:
    return zlib.crc32(data)


def checksums(buffers: list[Any]) -> list[int]:
    """crc32 of each buffer; in a thread pool when there is enough to share out."""
    if len(buffers) < 2 or sum(memoryview(b).nbytes for b in buffers) < PARALLEL_MIN_BYTES:
        return [zlib.crc32(b) for b in buffers]
    return list(_get_pool().map(zlib.crc32, buffers))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:  # created lazily in the process that uses it (never across fork)
        _pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="crc32")
    return _pool
