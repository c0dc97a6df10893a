"""SnapshotStore: the worker side of STATE/snapshots.lmdb.

Layout: key = codec.pack(rid) + b"\\0" + name. `meta` holds one small codec value; every large
tensor is its own value (`t/<name>`), so one request's entries are a contiguous key range
(msgpack encodings are prefix-free, so no rid's range overlaps another's).
One Environment per process (open it after spawn); any worker may read what another wrote.
The map doubles on MapFullError; a map grown by another process is adopted on MapResizedError.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import numpy as np

from syscalls import codec

T = TypeVar("T")
DEFAULT_MAP_BYTES = 1 << 30
META = "meta"


def rid_prefix(rid: Any) -> bytes:
    return codec.pack(rid) + b"\0"


def entry_key(rid: Any, name: str) -> bytes:
    return rid_prefix(rid) + name.encode()


class SnapshotStore:
    """Owned by one process. `sync=False`: snapshots need not survive a machine crash."""

    def __init__(self, path: str | Path, map_bytes: int = DEFAULT_MAP_BYTES, sync: bool = False):
        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.env = lmdb.open(
            self.path, map_size=map_bytes, subdir=True, sync=sync, metasync=sync,
            readahead=False, meminit=False, max_dbs=0,
        )

    def close(self) -> None:
        self.env.close()

    # -- writes ----------------------------------------------------------------------------
    def put_entries(self, rid: Any, entries: Iterable[tuple[str, Any]]) -> int:
        """Replace all entries of `rid` atomically; values are bytes-like. Returns bytes written."""
        prefix = rid_prefix(rid)
        items = [(prefix + name.encode(), value) for name, value in entries]

        def write(txn: lmdb.Transaction) -> int:
            _delete_prefix(txn, prefix)
            for key, value in items:
                txn.put(key, value)
            return sum(memoryview(v).nbytes for _, v in items)

        return self._write(write)

    def put_signed(
        self, rid: Any, tensors: list[tuple[str, Any]], sign: Callable[[Any], bytes],
        meta_of: Callable[[list[bytes]], bytes],
    ) -> tuple[int, float]:
        """Replace all entries of `rid` atomically: each tensor value is signed right before its
        put (its bytes are still in cache for the copy), then the metadata `meta_of(digests)` is
        put. Returns (bytes written, seconds spent in `sign`)."""
        prefix = rid_prefix(rid)
        keys = [prefix + name.encode() for name, _ in tensors]

        def write(txn: lmdb.Transaction) -> tuple[int, float]:
            _delete_prefix(txn, prefix)
            digests, signing, nbytes = [], 0.0, 0
            for key, (_, value) in zip(keys, tensors, strict=True):
                t0 = time.perf_counter()
                digests.append(sign(value))
                signing += time.perf_counter() - t0
                txn.put(key, value)
                nbytes += memoryview(value).nbytes
            meta = meta_of(digests)
            txn.put(prefix + META.encode(), meta)
            return nbytes + len(meta), signing

        return self._write(write)

    def delete(self, rid: Any) -> int:
        """Delete every entry of `rid`; returns how many there were."""
        return self._write(lambda txn: _delete_prefix(txn, rid_prefix(rid)))

    def _write(self, body: Callable[[lmdb.Transaction], T]) -> T:
        while True:
            try:
                with self._begin(write=True) as txn:
                    return body(txn)
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def _begin(self, write: bool = False, buffers: bool = False) -> lmdb.Transaction:
        try:
            return self.env.begin(write=write, buffers=buffers)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)  # adopt the size another process grew the map to
            return self.env.begin(write=write, buffers=buffers)

    # -- reads -----------------------------------------------------------------------------
    def read_snapshot(
        self, rid: Any, names_of: Callable[[bytes], list[str]],
        check: Callable[[str, np.ndarray | None], None] | None = None,
    ) -> tuple[bytes | None, dict]:
        """Metadata and the values it names, in one read transaction: `names_of(meta)` may
        check the metadata (and raise) before any value is copied; `check(name, copy)` (copy is
        None for a missing value) runs right after each copy, while its bytes are in cache, and may
        raise to stop the read."""
        prefix = rid_prefix(rid)
        with self._begin(buffers=True) as txn:
            view = txn.get(prefix + META.encode())
            if view is None:
                return None, {}
            meta = bytes(view)
            out: dict[str, np.ndarray | None] = {}
            for name in names_of(meta):
                value = txn.get(prefix + name.encode())
                out[name] = None if value is None else np.frombuffer(value, dtype=np.uint8).copy()
                if check is not None:
                    check(name, out[name])
        return meta, out

    def count_entries(self, rid: Any | None = None) -> int:
        with self._begin() as txn:
            if rid is None:
                return int(txn.stat()["entries"])
            return sum(1 for _ in _keys_with_prefix(txn.cursor(), rid_prefix(rid)))

    def all_keys(self) -> list[bytes]:
        """Every key in the store (debugging / integrity checks)."""
        with self._begin() as txn:
            return [bytes(k) for k in txn.cursor().iternext(keys=True, values=False)]


def _keys_with_prefix(cursor: lmdb.Cursor, prefix: bytes) -> Iterable[bytes]:
    if not cursor.set_range(prefix):
        return
    for key in cursor.iternext(keys=True, values=False):
        if not bytes(key).startswith(prefix):
            return
        yield bytes(key)


def _delete_prefix(txn: lmdb.Transaction, prefix: bytes) -> int:
    """Delete in place with one cursor (no second lookup per key)."""
    cursor = txn.cursor()
    num_deleted = 0
    if cursor.set_range(prefix):
        while cursor.key()[: len(prefix)] == prefix and cursor.delete():
            num_deleted += 1
    return num_deleted
