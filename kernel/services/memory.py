"""MemoryManager: per-agent short-term memory with a byte quota and LRU eviction to storage.

Entry size = len(pack(value)) + len(key). Resident entries live in the kernel process; when an
owner goes over quota its least-recently-used entries are stashed in storage (the `memstash`
sub-database, key "__mem__/<key>" in the owner's namespace) and found again transparently.
Owner: the kernel main thread. Invariant: used_bytes == sum of resident sizes <= quota.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kernel.services import keys
from kernel.services.text import rank
from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError


class Stash(Protocol):
    """Where evicted entries go (StorageManager implements it)."""

    @property
    def max_key_bytes(self) -> int: ...

    def stash(self, owner: str, key: str, data: bytes) -> None: ...
    def unstash(self, owner: str, key: str, remove: bool = True) -> bytes | None: ...
    def drop_stash(self, owner: str | None = None) -> int: ...


@dataclass(slots=True)
class AgentMemory:
    resident: OrderedDict[str, bytes] = field(default_factory=OrderedDict)  # LRU first
    evicted: dict[str, int] = field(default_factory=dict)  # key -> entry size
    used_bytes: int = 0


def entry_size(key: str, data: bytes) -> int:
    return len(data) + len(key)


class MemoryManager:
    def __init__(self, quota_bytes: int, stash: Stash) -> None:
        self.quota_bytes = quota_bytes
        self.stash = stash
        self._agents: dict[str, AgentMemory] = {}

    def put(self, owner: str, key: str, value: Any) -> tuple[int, list[str]]:
        """Store value; return (entry bytes, keys evicted to make room)."""
        keys.check_key_fits(owner, keys.MEM_PREFIX + key, self.stash.max_key_bytes)
        data = pack(value)
        size = entry_size(key, data)
        if size > self.quota_bytes:
            raise SyscallError(
                ErrorCode.QUOTA_EXCEEDED, f"entry is {size} bytes, memory quota {self.quota_bytes}"
            )
        mem = self._mem(owner)
        self._forget(owner, mem, key)
        return size, self._admit(owner, mem, key, data)

    def get(self, owner: str, key: str) -> tuple[Any, bool]:
        """Return (value, was_evicted); an evicted entry becomes resident again."""
        mem = self._agents.get(owner)
        if mem is not None and key in mem.resident:
            mem.resident.move_to_end(key)
            return unpack(mem.resident[key]), False
        if mem is None or key not in mem.evicted:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no memory entry {key!r}")
        data = self.stash.unstash(owner, key)
        del mem.evicted[key]
        assert data is not None, f"evicted entry {owner}/{key} missing from storage"
        self._admit(owner, mem, key, data)
        return unpack(data), True

    def list(self, owner: str) -> list[dict]:
        mem = self._agents.get(owner) or AgentMemory()
        out = [
            {"key": k, "bytes": entry_size(k, d), "is_resident": True}
            for k, d in mem.resident.items()
        ]
        out += [{"key": k, "bytes": n, "is_resident": False} for k, n in mem.evicted.items()]
        return out

    def used_bytes(self, owner: str) -> int:
        mem = self._agents.get(owner)
        return mem.used_bytes if mem is not None else 0

    def search(self, owner: str, query: str, limit: int) -> list[dict]:
        mem = self._agents.get(owner) or AgentMemory()

        def docs() -> Iterator[tuple[str, Any]]:
            for k, d in mem.resident.items():
                yield k, unpack(d)
            for k in mem.evicted:
                data = self.stash.unstash(owner, k, remove=False)
                if data is not None:
                    yield k, unpack(data)

        return rank(query, docs(), limit)

    def delete(self, owner: str, key: str) -> bool:
        mem = self._agents.get(owner)
        return mem is not None and self._forget(owner, mem, key)

    def free(self, owner: str) -> None:
        """Drop everything the owner holds, resident and evicted (agent exit)."""
        mem = self._agents.pop(owner, None)
        if mem is not None and mem.evicted:
            self.stash.drop_stash(owner)

    def check_integrity(self) -> None:
        for owner, mem in self._agents.items():
            total = sum(entry_size(k, d) for k, d in mem.resident.items())
            assert mem.used_bytes == total, f"{owner}: used {mem.used_bytes} != {total}"
            assert total <= self.quota_bytes, f"{owner}: {total} over quota"
            assert not (mem.resident.keys() & mem.evicted.keys()), f"{owner}: key twice"

    # ---- internals -----------------------------------------------------------------------
    def _mem(self, owner: str) -> AgentMemory:
        return self._agents.setdefault(owner, AgentMemory())

    def _forget(self, owner: str, mem: AgentMemory, key: str) -> bool:
        data = mem.resident.pop(key, None)
        if data is not None:
            mem.used_bytes -= entry_size(key, data)
            return True
        if mem.evicted.pop(key, None) is not None:
            self.stash.unstash(owner, key)
            return True
        return False

    def _admit(self, owner: str, mem: AgentMemory, key: str, data: bytes) -> list[str]:
        """Make key resident (most recent), evicting LRU entries until under quota."""
        size = entry_size(key, data)
        evicted = []
        while mem.used_bytes + size > self.quota_bytes:
            old_key, old_data = mem.resident.popitem(last=False)
            self.stash.stash(owner, old_key, old_data)
            mem.used_bytes -= entry_size(old_key, old_data)
            mem.evicted[old_key] = entry_size(old_key, old_data)
            evicted.append(old_key)
        mem.resident[key] = data
        mem.used_bytes += size
        return evicted
