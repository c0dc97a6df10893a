"""The `output_sha256` of reports and timelines: one definition for kernel, agents and tools."""

from __future__ import annotations

import hashlib
import struct


def output_sha256(token_ids: list[int]) -> str:
    """sha256 of generated token ids packed as uint32 little-endian: equal outputs, equal hashes."""
    return hashlib.sha256(struct.pack(f"<{len(token_ids)}I", *token_ids)).hexdigest()
