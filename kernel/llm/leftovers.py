"""Start-up reconciliation of STATE/snapshots.lmdb: a new kernel holds no request yet, so every
entry there was left by an earlier kernel (killed, or stopped mid-work) and nothing needs it.

Contract: called once by the kernel main thread before any worker starts; the Environment is
opened and closed here (workers open their own after spawn). KV bytes are never read.
"""

from __future__ import annotations

from pathlib import Path

import lmdb


def clear_snapshots(path: Path) -> int:
    """Delete every entry of the snapshot store at `path` (if it exists); returns how many."""
    if not (path / "data.mdb").exists():
        return 0
    env = lmdb.open(str(path), subdir=True, max_dbs=0, readahead=False)
    try:
        with env.begin(write=True) as txn:
            count = int(txn.stat()["entries"])
            txn.drop(env.open_db(), delete=False)
        return count
    finally:
        env.close()
