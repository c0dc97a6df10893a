"""StorageManager: per-agent persistent, versioned key-value storage (pure over a KVStore).

Layout (sub-databases of STATE/storage.lmdb):
- `versions`: version_key(owner, key, n) -> pack([time, is_deleted, value]), never rewritten;
- `latest`:   live_key(owner, key) -> pack([version, is_deleted, bytes]), the latest-version index
  (tombstones included, so the next version number survives a delete);
- `memstash`: live_key(owner, "__mem__/" + key) -> packed value, memory entries evicted by the
  MemoryManager (unversioned, hidden from list/search, dropped on agent exit and on open).
Search is a scan of the owner's `latest` entries: cost is bounded by the owner's own data, it
needs no index to keep consistent across put/delete/rollback, and LMDB scans are mmap-fast.
Owner: the kernel main thread (tool runners open the file read-only in their own process).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

from kernel.services import keys
from kernel.services.text import rank
from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError

DB_NAMES = ("versions", "latest", "memstash")


class KVStore(Protocol):
    max_key_bytes: int

    def get(self, db: str, key: bytes) -> bytes | None: ...
    def scan(self, db: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]: ...
    def write(self, ops: list[tuple[str, bytes, bytes | None]]) -> None: ...


class StorageManager:
    def __init__(self, store: KVStore) -> None:
        self.store = store

    @property
    def max_key_bytes(self) -> int:
        return self.store.max_key_bytes

    # ---- versioned API -------------------------------------------------------------------
    def put(self, owner: str, key: str, value: Any) -> int:
        self._check_key(owner, key)
        return self._write_version(owner, key, value, is_deleted=False)

    def get(self, owner: str, key: str, version: int | None = None) -> tuple[Any, int]:
        self._check_key(owner, key)
        if version is None:
            latest = self._latest(owner, key)
            if latest is None or latest[1]:
                raise SyscallError(ErrorCode.NOT_FOUND, f"no key {key!r}")
            version = latest[0]
        record = self._version(owner, key, version)
        if record[1]:
            raise SyscallError(ErrorCode.NOT_FOUND, f"version {version} of {key!r} is a deletion")
        return record[2], version

    def list(self, owner: str, prefix: str = "") -> list[dict]:
        out = []
        for raw, data in self.store.scan("latest", keys.live_key(owner, prefix)):
            key = keys.split_live_key(owner, raw)
            version, is_deleted, size = unpack(data)
            if not is_deleted and not key.startswith(keys.MEM_PREFIX):
                out.append({"key": key, "version": version, "bytes": size})
        return out

    def delete(self, owner: str, key: str) -> int | None:
        """Write a tombstone; return its version, or None if the key was not live."""
        self._check_key(owner, key)
        latest = self._latest(owner, key)
        if latest is None or latest[1]:
            return None
        return self._write_version(owner, key, None, is_deleted=True)

    def versions(self, owner: str, key: str) -> list[dict]:
        self._check_key(owner, key)
        rows = self.store.scan("versions", keys.versions_prefix(owner, key))
        if not rows:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no key {key!r}")
        out = []
        for raw, data in rows:
            t, is_deleted, value = unpack(data)
            size = 0 if is_deleted else len(pack(value))
            out.append(
                {
                    "version": int.from_bytes(raw[-8:], "big"),
                    "time": t,
                    "bytes": size,
                    "is_deleted": is_deleted,
                }
            )
        return out

    def rollback(self, owner: str, key: str, version: int) -> int:
        """Write a new version equal to `version` (a tombstone version deletes again)."""
        self._check_key(owner, key)
        _, is_deleted, value = self._version(owner, key, version)
        return self._write_version(owner, key, value, is_deleted=is_deleted)

    def search(self, owner: str, query: str, limit: int) -> list[dict]:
        return search_live(self.store, owner, query, limit)

    # ---- memory stash (MemoryManager's eviction target) ------------------------------------
    def stash(self, owner: str, key: str, data: bytes) -> None:
        self.store.write([("memstash", self._stash_key(owner, key), data)])

    def unstash(self, owner: str, key: str, remove: bool = True) -> bytes | None:
        raw = self._stash_key(owner, key)
        data = self.store.get("memstash", raw)
        if data is not None and remove:
            self.store.write([("memstash", raw, None)])
        return data

    def drop_stash(self, owner: str | None = None) -> int:
        """Delete stashed memory of one owner (or of everyone); return how many."""
        prefix = keys.namespace(owner) if owner is not None else b""
        rows = self.store.scan("memstash", prefix)
        if rows:
            self.store.write([("memstash", raw, None) for raw, _ in rows])
        return len(rows)

    def drop_owner(self, owner: str) -> int:
        """Delete every version, index entry and stash of one owner (its identity was deleted)."""
        prefix = keys.namespace(owner)
        ops = [(db, raw, None) for db in DB_NAMES for raw, _ in self.store.scan(db, prefix)]
        if ops:
            self.store.write(ops)
        return len(ops)

    def stash_size(self, owner: str) -> int:
        return len(self.store.scan("memstash", keys.namespace(owner)))

    # ---- integrity -----------------------------------------------------------------------
    def check_integrity(self) -> None:
        """Every `latest` entry names the highest stored version, with matching deletion flag."""
        for raw, data in self.store.scan("latest"):
            version, is_deleted, size = unpack(data)
            owner_len = int.from_bytes(raw[:2], "big")
            owner, key = raw[2 : 2 + owner_len].decode(), raw[2 + owner_len :].decode()
            rows = self.store.scan("versions", keys.versions_prefix(owner, key))
            assert rows, f"latest {owner}/{key} has no versions"
            top = int.from_bytes(rows[-1][0][-8:], "big")
            assert top == version == len(rows), f"{owner}/{key}: latest {version}, top {top}"
            assert unpack(rows[-1][1])[1] == is_deleted, f"{owner}/{key}: deletion flag"

    # ---- internals -----------------------------------------------------------------------
    def _write_version(self, owner: str, key: str, value: Any, is_deleted: bool) -> int:
        latest = self._latest(owner, key)
        version = 1 if latest is None else latest[0] + 1
        size = 0 if is_deleted else len(pack(value))
        self.store.write(
            [
                (
                    "versions",
                    keys.version_key(owner, key, version),
                    pack([time.time(), is_deleted, value]),
                ),
                ("latest", keys.live_key(owner, key), pack([version, is_deleted, size])),
            ]
        )
        return version

    def _latest(self, owner: str, key: str) -> list | None:
        data = self.store.get("latest", keys.live_key(owner, key))
        return None if data is None else unpack(data)

    def _version(self, owner: str, key: str, version: int) -> list:
        data = self.store.get("versions", keys.version_key(owner, key, version))
        if data is None:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no version {version} of {key!r}")
        return unpack(data)

    def _check_key(self, owner: str, key: str) -> None:
        keys.check_not_reserved(key)
        keys.check_key_fits(owner, key, self.store.max_key_bytes)

    def _stash_key(self, owner: str, key: str) -> bytes:
        return keys.live_key(owner, keys.MEM_PREFIX + key)


def search_live(store: KVStore, owner: str, query: str, limit: int) -> list[dict]:
    """Keyword search over the owner's live latest values (also used read-only by tool runners)."""

    def docs() -> Iterator[tuple[str, Any]]:
        for raw, data in store.scan("latest", keys.namespace(owner)):
            key = keys.split_live_key(owner, raw)
            version, is_deleted, _ = unpack(data)
            if is_deleted or key.startswith(keys.MEM_PREFIX):
                continue
            record = store.get("versions", keys.version_key(owner, key, version))
            if record is not None:
                yield key, unpack(record)[2]

    return rank(query, docs(), limit, with_snippet=True)
