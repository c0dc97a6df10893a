"""Shared fixtures: the tiny model loaded once per session, a fresh LMDB store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.engine import EngineConfig, WorkerEngine
from workers.model import LoadedModel, load_model
from workers.store import SnapshotStore


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return load_model("tiny", threads=1)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SnapshotStore]:
    snapshot_store = SnapshotStore(tmp_path / "snapshots.lmdb", map_bytes=1 << 24)
    yield snapshot_store
    snapshot_store.close()


@pytest.fixture(params=["native", "hf"])
def engine(request: pytest.FixtureRequest, tiny: LoadedModel, store: SnapshotStore) -> WorkerEngine:
    """Both engines: the native one (paged pool, batch-invariant) and the generic transformers one."""
    return WorkerEngine(tiny, store, EngineConfig(record_scores=True, engine=request.param, kv_pool_bytes=16 << 20))


@pytest.fixture()
def native_engine(tiny: LoadedModel, store: SnapshotStore) -> WorkerEngine:
    return WorkerEngine(tiny, store, EngineConfig(record_scores=True, engine="native", kv_pool_bytes=16 << 20))
