"""AccessManager: grants between agents (by name) and the one access check used by every handler.

Each agent owns its memory, storage and snapshots. Another agent may read (get/list/search/
versions) or write (put/delete/rollback) them only with a live grant from the owner. Grants are
keyed by names (identities) and stored with the identities (STATE/identity.lmdb, sub-database
`grants`: u64 grant id -> pack([owner, grantee, resource, mode])), so they survive restarts
and an agent's exit; deleting an identity deletes every grant naming it (`forget`). Every
grant, revocation and denial is recorded in the audit log. Owner: the kernel main thread.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError

RESOURCES = ("memory", "storage", "snapshots")
MODES = ("read", "write", "readwrite")


class GrantStore(Protocol):
    def scan(self, db: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]: ...
    def write(self, ops: list[tuple[str, bytes, bytes | None]]) -> None: ...


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
    def __init__(self, audit: Recorder, store: GrantStore) -> None:
        self.audit = audit
        self.store = store
        self._grants: dict[int, Grant] = {}
        for raw, data in store.scan("grants"):
            gid = int.from_bytes(raw, "big")
            self._grants[gid] = Grant(gid, *unpack(data))
        self._ids = itertools.count(max(self._grants, default=0) + 1)

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
        self.store.write([("grants", _key(g.grant_id), pack([owner, grantee, resource, mode]))])
        self._grants[g.grant_id] = g
        self.audit.record("grant", agent=owner, target=grantee, resource=resource, detail=mode)
        return g.grant_id

    def revoke(self, owner: str, grantee: str, resource: str) -> int:
        """Remove all of owner's grants to grantee on resource; return how many."""
        ids = [g.grant_id for g in self._find(owner, grantee, resource)]
        self._delete(ids)
        self.audit.record(
            "revoke", agent=owner, target=grantee, resource=resource, detail=f"revoked {len(ids)}"
        )
        return len(ids)

    def forget(self, name: str) -> int:
        """Delete every grant given by or to `name` (its identity is being deleted); return how many."""
        ids = [g.grant_id for g in self._grants.values() if name in (g.owner, g.grantee)]
        self._delete(ids)
        return len(ids)

    def _delete(self, ids: list[int]) -> None:
        self.store.write([("grants", _key(gid), None) for gid in ids])
        for gid in ids:
            del self._grants[gid]

    def given(self, owner: str) -> list[Grant]:
        return [g for g in self._grants.values() if g.owner == owner]

    def received(self, grantee: str) -> list[Grant]:
        return [g for g in self._grants.values() if g.grantee == grantee]

    def check_integrity(self) -> None:
        assert len(self.store.scan("grants")) == len(self._grants), "stored grants differ from held ones"
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


def _key(grant_id: int) -> bytes:
    return grant_id.to_bytes(8, "big")
