"""Start-up reconciliation of STATE/snapshots.lmdb: a new kernel keeps only the checkpoints that
the requests it recovers from the journal resume from; everything else there was left by an
earlier kernel (killed, or stopped mid-work) and nothing needs it.

Contract: called once by the kernel main thread before any worker starts; the Environment is
opened and closed here (workers open their own after spawn). KV bytes are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lmdb

from workers.store import rid_prefix


def reconcile_snapshots(path: Path, keep: Iterable[str] = ()) -> int:
    """Delete every entry of the snapshot store at `path` (if it exists) except those of the
    worker-side keys in `keep`; returns how many were deleted."""
    if not (path / "data.mdb").exists():
        return 0
    prefixes = tuple(rid_prefix(key) for key in keep)
    env = lmdb.open(str(path), subdir=True, max_dbs=0, readahead=False)
    try:
        with env.begin(write=True) as txn:
            if not prefixes:
                count = int(txn.stat()["entries"])
                txn.drop(env.open_db(), delete=False)
                return count
            stale = [key for key in txn.cursor().iternext(keys=True, values=False) if not key.startswith(prefixes)]
            for key in stale:
                txn.delete(key)
            return len(stale)
    finally:
        env.close()
