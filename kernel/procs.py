"""The process table: registered agents, their tokens and liveness. Pure; no sockets.

Owner: the kernel main thread. Invariant (check_integrity): every live record has exactly one
token in the token index, live names are unique, and exited records hold no token.
"""

from __future__ import annotations

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
        self._by_token: dict[str, AgentRecord] = {}
        self._live_names: dict[str, AgentRecord] = {}
        self._next_id = 1

    def register(self, name: str, pid: int | None, meta: dict | None) -> AgentRecord:
        if name in self._live_names:
            other = self._live_names[name]
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"agent name '{name}' is in use by agent {other.agent_id} (pid {other.pid})")
        rec = AgentRecord(self._next_id, name, pid, secrets.token_hex(16), time.monotonic(), dict(meta or {}))
        self._next_id += 1
        self._records[rec.agent_id] = rec
        self._by_token[rec.token] = rec
        self._live_names[name] = rec
        return rec

    def authenticate(self, token: str | None) -> AgentRecord | None:
        """The live agent holding this token, or None."""
        if token is None:
            return None
        return self._by_token.get(token)

    def retire(self, rec: AgentRecord, state: str, code: int | None) -> bool:
        """Mark an agent exited/killed and invalidate its token. False if it was already gone."""
        if not rec.is_live:
            return False
        rec.state, rec.exit_code, rec.ended_s = state, code, time.monotonic()
        self._by_token.pop(rec.token, None)
        self._live_names.pop(rec.name, None)
        return True

    def is_live_name(self, name: str) -> bool:
        return name in self._live_names

    def live(self) -> list[AgentRecord]:
        return list(self._live_names.values())

    def all(self) -> list[AgentRecord]:
        return list(self._records.values())

    def find_dead(self) -> list[AgentRecord]:
        """Live records whose OS process is gone (or a zombie)."""
        return [r for r in self._live_names.values() if r.pid is not None and not is_pid_alive(r.pid)]

    def check_integrity(self) -> None:
        live = [r for r in self._records.values() if r.is_live]
        assert len(live) == len(self._by_token) == len(self._live_names), "token/name index out of sync"
        for r in live:
            assert self._by_token[r.token] is r and self._live_names[r.name] is r
        for r in self._records.values():
            assert r.is_live or r.token not in self._by_token, f"exited agent {r.agent_id} holds a token"


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
