"""The `output_sha256` of reports and timelines: one definition for kernel, agents and tools."""

from __future__ import annotations

import hashlib
import struct


def bytes_sha256(raw: bytes) -> str:
    """`logprobs_sha256`: sha256 of the float32 little-endian log-probabilities, in order."""
    return hashlib.sha256(raw).hexdigest()


def pack_float32(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def unpack_float32(raw: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def output_sha256(token_ids: list[int]) -> str:
    """sha256 of generated token ids packed as uint32 little-endian: equal outputs, equal hashes."""
    return hashlib.sha256(struct.pack(f"<{len(token_ids)}I", *token_ids)).hexdigest()
