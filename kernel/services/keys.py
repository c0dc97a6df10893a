"""Byte layout of storage keys: one namespace per owner name, prefix-scannable.

namespace(owner) = u16 len + owner utf-8; live key = namespace + key utf-8 (prefix scans by
key prefix); version key = namespace + u16 len + key utf-8 + u64 version (all versions of
exactly one key share a prefix, in version order).
"""

from __future__ import annotations

from syscalls.errors import ErrorCode, SyscallError

MEM_PREFIX = "__mem__/"  # reserved: memory entries evicted to storage


def namespace(owner: str) -> bytes:
    raw = owner.encode()
    return len(raw).to_bytes(2, "big") + raw


def live_key(owner: str, key: str) -> bytes:
    return namespace(owner) + key.encode()


def split_live_key(owner: str, raw: bytes) -> str:
    return raw[len(namespace(owner)) :].decode()


def versions_prefix(owner: str, key: str) -> bytes:
    raw = key.encode()
    return namespace(owner) + len(raw).to_bytes(2, "big") + raw


def version_key(owner: str, key: str, version: int) -> bytes:
    return versions_prefix(owner, key) + version.to_bytes(8, "big")


def check_key_fits(owner: str, key: str, max_key_bytes: int) -> None:
    """Longest encoded form (a version key) must fit LMDB's key limit."""
    size = len(version_key(owner, key, 0))
    if size > max_key_bytes:
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT,
            f"field 'key': encoded key is {size} bytes, limit {max_key_bytes}",
        )


def check_not_reserved(key: str) -> None:
    if key.startswith(MEM_PREFIX):
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT,
            f"field 'key': prefix {MEM_PREFIX!r} is reserved for evicted memory",
        )
