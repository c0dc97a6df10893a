"""Digests of snapshot values: xxh3_128 of the bytes.

xxh3 runs at memory speed (~13-30 GB/s here, vs ~3 GB/s for crc32), so verifying every byte on
write and again on read costs a few ms per 100 MB. A 128-bit digest makes an undetected
corruption of any kind (flipped bit, torn or swapped value) a 2**-128 event. Values are hashed
one after another: the hash is memory-bound, a thread pool gained nothing.
"""

from __future__ import annotations

from typing import Any

import xxhash

ALGORITHM = "xxh3_128"
DIGEST_BYTES = 16


def digest(data: Any) -> bytes:
    """16-byte xxh3_128 digest of a bytes-like object (read in place, never copied)."""
    return xxhash.xxh3_128_digest(data)

