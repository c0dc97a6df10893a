"""AccessManager: grants between agents (by name) and the one access check used by every handler.

Each agent owns its memory, storage and snapshots. Another agent may read (get/list/search/
versions) or write (put/delete/rollback) them only with a live grant from the owner. Grants are
held in kernel memory, keyed by names, and last while the kernel runs (an agent that exits and
comes back under the same name keeps them, as it keeps its storage); every grant, revocation
and denial is recorded in the audit log, which does persist. Owner: the kernel main thread.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from syscalls.errors import ErrorCode, SyscallError

RESOURCES = ("memory", "storage", "snapshots")
MODES = ("read", "write", "readwrite")


class Recorder(Protocol):
    def record(
        self,
        event: str,
        agent: str,
        target: str | None = None,
        resource: str | None = None,
        detail: str | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: int
    owner: str
    grantee: str
    resource: str
    mode: str

    def allows(self, mode: str) -> bool:
        return self.mode == "readwrite" or self.mode == mode

    def to_wire(self) -> dict:
        return {
            "grant_id": self.grant_id,
            "owner": self.owner,
            "grantee": self.grantee,
            "resource": self.resource,
            "mode": self.mode,
        }


class AccessManager:
    def __init__(self, audit: Recorder) -> None:
        self.audit = audit
        self._grants: dict[int, Grant] = {}
        self._ids = itertools.count(1)

    def check(
        self, caller: str, owner: str | None, resource: str, mode: str, action: str = ""
    ) -> str:
        """Return the effective owner (default: caller) or raise PERMISSION_DENIED (audited)."""
        assert mode in ("read", "write"), mode
        if owner is None or owner == caller:
            return caller
        if any(g.allows(mode) for g in self._find(owner, caller, resource)):
            return owner
        self.audit.record(
            "deny", agent=caller, target=owner, resource=resource, detail=f"{mode} {action}".strip()
        )
        raise SyscallError(
            ErrorCode.PERMISSION_DENIED, f"{caller!r} has no {mode} grant on {owner!r}'s {resource}"
        )

    def grant(self, owner: str, grantee: str, resource: str, mode: str) -> int:
        """Grant (idempotent for an identical live grant); return its id."""
        if grantee == owner:
            raise SyscallError(
                ErrorCode.INVALID_ARGUMENT, "field 'grantee': cannot grant to yourself"
            )
        for g in self._find(owner, grantee, resource):
            if g.mode == mode:
                return g.grant_id
        g = Grant(next(self._ids), owner, grantee, resource, mode)
        self._grants[g.grant_id] = g
        self.audit.record("grant", agent=owner, target=grantee, resource=resource, detail=mode)
        return g.grant_id

    def revoke(self, owner: str, grantee: str, resource: str) -> int:
        """Remove all of owner's grants to grantee on resource; return how many."""
        ids = [g.grant_id for g in self._find(owner, grantee, resource)]
        for gid in ids:
            del self._grants[gid]
        self.audit.record(
            "revoke", agent=owner, target=grantee, resource=resource, detail=f"revoked {len(ids)}"
        )
        return len(ids)

    def given(self, owner: str) -> list[Grant]:
        return [g for g in self._grants.values() if g.owner == owner]

    def received(self, grantee: str) -> list[Grant]:
        return [g for g in self._grants.values() if g.grantee == grantee]

    def check_integrity(self) -> None:
        for gid, g in self._grants.items():
            assert gid == g.grant_id, f"grant {gid} stored under wrong id"
            assert g.owner != g.grantee, f"grant {gid} to its own owner"
            assert g.resource in RESOURCES and g.mode in MODES, f"grant {gid} malformed"

    def _find(self, owner: str, grantee: str, resource: str) -> list[Grant]:
        return [
            g
            for g in self._grants.values()
            if g.owner == owner and g.grantee == grantee and g.resource == resource
        ]
