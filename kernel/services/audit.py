"""AuditLog: the append-only log of grants, revocations, denials and bad tokens.

Stored in STATE/audit.lmdb, sub-database `events`: u64 big-endian sequence number ->
pack([time, event, agent, target, resource, detail]). Entries are never updated or deleted;
times are made non-decreasing in sequence order so `since` can stop a backwards scan.
Visibility: a viewer sees only events whose agent or target is the viewer; viewer None (the
kernel's operator) sees every event.
Owner: the kernel main thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from syscalls.codec import pack, unpack

DB_NAMES = ("events",)
EVENTS = ("grant", "revoke", "deny", "bad_token", "bad_secret", "identity")


class AppendStore(Protocol):
    def write(self, ops: list[tuple[str, bytes, bytes | None]]) -> None: ...
    def last_key(self, db: str) -> bytes | None: ...
    def get(self, db: str, key: bytes) -> bytes | None: ...
    def walk_back(self, db: str, visit: Callable[[bytes, bytes], bool]) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditQuery:
    viewer: str | None  # None: the operator, sees all
    agent: str | None = None  # matches the event's agent or target
    event: str | None = None
    since: float | None = None
    limit: int = 10


class AuditLog:
    def __init__(self, store: AppendStore) -> None:
        self.store = store
        last = store.last_key("events")
        self.next_seq = 1 if last is None else int.from_bytes(last, "big") + 1
        self._last_time = 0.0 if last is None else unpack(store.get("events", last))[0]

    def record(
        self,
        event: str,
        agent: str,
        target: str | None = None,
        resource: str | None = None,
        detail: str | None = None,
    ) -> int:
        """Append one event; return its sequence number."""
        seq = self.next_seq
        self._last_time = max(time.time(), self._last_time)
        row = [self._last_time, event, agent, target, resource, detail]
        self.store.write([("events", seq.to_bytes(8, "big"), pack(row))])
        self.next_seq += 1
        return seq

    def query(self, q: AuditQuery) -> list[dict]:
        """The newest `limit` visible events matching q, oldest first."""
        found: list[dict] = []

        def visit(raw: bytes, data: bytes) -> bool:
            ev = _event(raw, data)
            if q.since is not None and ev["time"] < q.since:
                return False
            if _matches(ev, q):
                found.append(ev)
            return len(found) < q.limit

        self.store.walk_back("events", visit)
        found.reverse()
        return found

    def check_integrity(self) -> None:
        last = self.store.last_key("events")
        top = 0 if last is None else int.from_bytes(last, "big")
        assert top == self.next_seq - 1, f"audit seq {top} != {self.next_seq - 1}"


def _event(raw: bytes, data: bytes) -> dict:
    t, event, agent, target, resource, detail = unpack(data)
    return {
        "seq": int.from_bytes(raw, "big"),
        "time": t,
        "event": event,
        "agent": agent,
        "target": target,
        "resource": resource,
        "detail": detail,
    }


def _matches(ev: dict, q: AuditQuery) -> bool:
    names = (ev["agent"], ev["target"])
    if q.viewer is not None and q.viewer not in names:
        return False
    if q.agent is not None and q.agent not in names:
        return False
    return q.event is None or ev["event"] == q.event
