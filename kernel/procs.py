"""The process table: registered agents, their session tokens and liveness. Pure; no sockets.

A token is '<agent_id>.<random hex>': the id finds the record, and the whole token is compared
in constant time (hmac.compare_digest), so response times leak nothing of a live token.
Owner: the kernel main thread. Invariant (check_integrity): live names are unique and each
names one live record; only live records authenticate.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass, field

from syscalls.errors import ErrorCode, SyscallError


@dataclass(slots=True)
class AgentRecord:
    agent_id: int
    name: str
    pid: int | None
    token: str
    started_s: float  # time.monotonic() at registration
    meta: dict = field(default_factory=dict)
    state: str = "running"  # running | exited | killed
    num_syscalls: int = 0
    exit_code: int | None = None
    ended_s: float | None = None

    @property
    def is_live(self) -> bool:
        return self.state == "running"

    def to_wire(self, now: float) -> dict:
        end = self.ended_s if self.ended_s is not None else now
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "pid": self.pid,
            "state": self.state,
            "num_syscalls": self.num_syscalls,
            "uptime_s": round(end - self.started_s, 3),
            "exit_code": self.exit_code,
            "meta": self.meta,
        }


class ProcessTable:
    def __init__(self) -> None:
        self._records: dict[int, AgentRecord] = {}
        self._live_names: dict[str, AgentRecord] = {}
        self._polled: dict[int, AgentRecord] = {}  # live records whose pid find_dead checks (not pidfd-watched)
        self._next_id = 1

    def check_free(self, name: str) -> None:
        """ALREADY_EXISTS if a live agent holds the name."""
        if name in self._live_names:
            other = self._live_names[name]
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"agent name '{name}' is in use by agent {other.agent_id} (pid {other.pid})")

    def register(self, name: str, pid: int | None, meta: dict | None) -> AgentRecord:
        self.check_free(name)
        token = f"{self._next_id}.{secrets.token_hex(16)}"
        rec = AgentRecord(self._next_id, name, pid, token, time.monotonic(), dict(meta or {}))
        self._next_id += 1
        self._records[rec.agent_id] = rec
        self._live_names[name] = rec
        return rec

    def authenticate(self, token: str | None) -> AgentRecord | None:
        """The live agent holding this token, or None."""
        agent_id, dot, _ = (token or "").partition(".")
        rec = self._records.get(int(agent_id)) if dot and agent_id.isdigit() else None
        if rec is None or not rec.is_live:
            return None
        return rec if hmac.compare_digest(rec.token.encode(), (token or "").encode()) else None

    def retire(self, rec: AgentRecord, state: str, code: int | None) -> bool:
        """Mark an agent exited/killed and invalidate its token. False if it was already gone."""
        if not rec.is_live:
            return False
        rec.state, rec.exit_code, rec.ended_s = state, code, time.monotonic()
        self._live_names.pop(rec.name, None)
        self._polled.pop(rec.agent_id, None)
        return True

    def poll_liveness(self, rec: AgentRecord) -> None:
        """Have find_dead check this record's pid (its exit cannot be watched)."""
        self._polled[rec.agent_id] = rec

    def by_id(self, agent_id: int) -> AgentRecord | None:
        return self._records.get(agent_id)

    def live_by_name(self, name: str) -> AgentRecord | None:
        return self._live_names.get(name)

    def is_live_name(self, name: str) -> bool:
        return name in self._live_names

    def live(self) -> list[AgentRecord]:
        return list(self._live_names.values())

    def all(self) -> list[AgentRecord]:
        return list(self._records.values())

    def find_dead(self) -> list[AgentRecord]:
        """Polled live records whose OS process is gone (or a zombie)."""
        return [r for r in self._polled.values() if r.pid is not None and not is_pid_alive(r.pid)]

    def check_integrity(self) -> None:
        live = [r for r in self._records.values() if r.is_live]
        assert len(live) == len(self._live_names), "name index out of sync"
        for r in live:
            assert self._live_names[r.name] is r and self.authenticate(r.token) is r
        for r in self._records.values():
            assert r.is_live or self.authenticate(r.token) is None, f"exited agent {r.agent_id} authenticates"
        assert all(r.is_live for r in self._polled.values()), "an exited agent is still polled"


def is_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True
