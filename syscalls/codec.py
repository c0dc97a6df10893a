"""The one codec: the only module in aiosim that imports msgpack.

Every process (kernel, agents, workers, tool runners) packs and unpacks through here.
"""

from __future__ import annotations

from typing import Any

import msgpack

from syscalls.errors import ErrorCode, SyscallError

MAX_DEPTH = 32


def pack(obj: Any) -> bytes:
    """Encode a message (maps, lists, str, bytes, int, float, bool, None)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, max_bytes: int | None = None) -> Any:
    """Decode one message; raise SyscallError(BAD_FRAME/TOO_LARGE) on junk."""
    if max_bytes is not None and len(data) > max_bytes:
        raise SyscallError(ErrorCode.TOO_LARGE, f"message is {len(data)} bytes, limit {max_bytes}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            max_bin_len=len(data),
            max_str_len=len(data),
            max_array_len=len(data),
            max_map_len=len(data),
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise SyscallError(ErrorCode.BAD_FRAME, f"not a msgpack message: {exc}") from None


def peek_key(data: bytes, key: str) -> Any:
    """The value under `key` of a top-level map, skipping (not decoding) every other value;
    None when it cannot be read. Lets a TOO_LARGE reply carry the request's id."""
    try:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data) or 1)
        unpacker.feed(data)
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == key:
                return unpacker.unpack()
            unpacker.skip()
    except Exception:  # not a map, truncated, junk: no id to salvage
        return None
    return None
