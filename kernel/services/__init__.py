"""The kernel's services: memory, storage, tools, access and audit, opened together.

`open_services(config, loop)` is called once by the kernel process after it starts (LMDB
environments and the tool ROUTER are created here, in that process). Owner of every manager:
the kernel main thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.config import KernelConfig
from kernel.loop import EventLoop
from kernel.services import audit as audit_mod
from kernel.services import identity as identity_mod
from kernel.services import storage as storage_mod
from kernel.services.access import AccessManager
from kernel.services.audit import AuditLog
from kernel.services.identity import IdentityManager
from kernel.services.lmdb_store import LmdbStore
from kernel.services.memory import MemoryManager
from kernel.services.storage import StorageManager
from kernel.services.tools.pool import ToolPool
from kernel.services.tools.registry import ToolRegistry

STORAGE_DIR = "storage.lmdb"
AUDIT_DIR = "audit.lmdb"
IDENTITY_DIR = "identity.lmdb"
FLUSH_EVERY_S = 1.0  # fsync of the kernel's LMDB stores (a machine crash loses at most this much)


@dataclass(slots=True)
class ToolManager:
    registry: ToolRegistry
    pool: ToolPool


@dataclass(slots=True)
class Services:
    memory: MemoryManager
    storage: StorageManager
    tools: ToolManager
    access: AccessManager
    audit: AuditLog
    identities: IdentityManager
    _stores: tuple[LmdbStore, ...] = ()

    def on_agent_exit(self, name: str) -> None:
        """Free the agent's memory (resident and evicted) and cancel its tool calls.
        Its storage and the grants naming it persist (names are identities)."""
        self.memory.free(name)
        self.tools.pool.cancel(name)

    def forget(self, name: str) -> None:
        """Delete an identity and everything keyed by its name: grants given and received,
        storage, memory. Its live agent must have been retired first (Kernel.forget_identity)."""
        self.identities.remove(name)
        num_grants = self.access.forget(name)
        self.storage.drop_owner(name)
        self.memory.free(name)
        self.audit.record("identity", agent=name, detail=f"removed ({num_grants} grants)")

    def check_integrity(self) -> None:
        self.memory.check_integrity()
        self.storage.check_integrity()
        self.access.check_integrity()
        self.audit.check_integrity()
        self.tools.pool.check_integrity()

    def close(self) -> None:
        """Stop tool runners (no strays), then close LMDB. Call once."""
        self.tools.pool.close()
        for store in self._stores:
            store.close()
        self._stores = ()


def open_services(config: KernelConfig, loop: EventLoop) -> Services:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    storage_store = LmdbStore(config.state_dir / STORAGE_DIR, storage_mod.DB_NAMES, sync=False)
    audit_store = LmdbStore(config.state_dir / AUDIT_DIR, audit_mod.DB_NAMES, sync=False)
    identity_store = LmdbStore(config.state_dir / IDENTITY_DIR, identity_mod.DB_NAMES, sync=False)
    stores = (storage_store, audit_store, identity_store)
    loop.call_every(FLUSH_EVERY_S, lambda: [s.flush() for s in stores])  # group commit: see lmdb_store.py
    storage = StorageManager(storage_store)
    storage.drop_stash()  # evicted memory of a previous kernel run belongs to dead agents
    audit = AuditLog(audit_store)
    registry = ToolRegistry()
    pool = ToolPool(
        config, loop, registry, storage_store.path, after_kill=storage_store.reader_check
    )
    return Services(
        memory=MemoryManager(config.mem_quota_bytes, storage),
        storage=storage,
        tools=ToolManager(registry, pool),
        access=AccessManager(audit, identity_store),
        audit=audit,
        identities=IdentityManager(identity_store),
        _stores=stores,
    )
