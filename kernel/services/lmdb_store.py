"""The LMDB edge: one Environment per process per path, atomic batched writes, map growth.

Contract: an `LmdbStore` is created in the process that uses it (never inherited across fork)
and is used only from that process's main thread. Writers double the map on MapFullError.
Read-only stores (tool runners) adopt a map grown by the writer (MapResizedError).
Durability: with `sync=False` a commit is in the OS page cache at once (it survives the death
of the process) and reaches the disk at the next `flush()` (the kernel flushes every second and
at close), so a machine crash loses at most the writes since then; an fsync per commit costs
about a millisecond, which thousands of agents registering at once cannot afford.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import lmdb

T = TypeVar("T")
INITIAL_MAP_BYTES = 16 << 20
MAX_DBS = 8

# one write: (db name, key, value); value None deletes the key
WriteOp = tuple[str, bytes, bytes | None]


class LmdbStore:
    """A small key-value facade over named LMDB sub-databases."""

    def __init__(
        self, path: Path, db_names: Iterable[str], readonly: bool = False, sync: bool = True
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(self.path),
            map_size=INITIAL_MAP_BYTES,
            max_dbs=MAX_DBS,
            readonly=readonly,
            sync=sync,
            metasync=sync,
        )
        self._dbs = {
            name: self.env.open_db(name.encode(), create=not readonly) for name in db_names
        }
        self.max_key_bytes = self.env.max_key_size()
        self.is_dirty = False  # committed since the last flush()

    def get(self, db: str, key: bytes) -> bytes | None:
        def read() -> bytes | None:
            with self.env.begin(db=self._dbs[db]) as txn:
                return txn.get(key)

        return self._read(read)

    def scan(self, db: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """All (key, value) pairs whose key starts with prefix, in key order."""

        def read() -> list[tuple[bytes, bytes]]:
            with self.env.begin(db=self._dbs[db]) as txn:
                return _scan_txn(txn.cursor(), prefix)

        return self._read(read)

    def walk_back(self, db: str, visit: Callable[[bytes, bytes], bool]) -> None:
        """Visit pairs from the last key backwards until visit returns False."""

        def read() -> None:
            with self.env.begin(db=self._dbs[db]) as txn:
                cur = txn.cursor()
                if not cur.last():
                    return
                for key, value in cur.iterprev():
                    if not visit(key, value):
                        return

        self._read(read)

    def last_key(self, db: str) -> bytes | None:
        def read() -> bytes | None:
            with self.env.begin(db=self._dbs[db]) as txn:
                cur = txn.cursor()
                return cur.key() if cur.last() else None

        return self._read(read)

    def write(self, ops: list[WriteOp]) -> None:
        """Apply all ops in one transaction; grow the map (x2) and retry when it is full."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for db, key, value in ops:
                        if value is None:
                            txn.delete(key, db=self._dbs[db])
                        else:
                            txn.put(key, value, db=self._dbs[db])
                self.is_dirty = True
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def count(self, db: str) -> int:
        with self.env.begin(db=self._dbs[db]) as txn:
            return txn.stat(self._dbs[db])["entries"]

    def reader_check(self) -> int:
        """Clear reader slots left by dead processes (a killed tool runner)."""
        return self.env.reader_check()

    def flush(self) -> None:
        """Force committed writes to disk (fsync) if there are any since the last flush."""
        if self.is_dirty and not self.readonly:
            self.env.sync(True)
            self.is_dirty = False

    def close(self) -> None:
        self.flush()
        self.env.close()

    def _read(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except lmdb.MapResizedError:  # another process grew the map
            self.env.set_mapsize(0)
            return fn()


def _scan_txn(cur: lmdb.Cursor, prefix: bytes) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    if not cur.set_range(prefix):
        return out
    for key, value in cur:
        if not key.startswith(prefix):
            break
        out.append((key, value))
    return out
