"""The scheduler's plans and their results: a Plan is sent as a PlanRequest, a PlanDone comes
back as a PlanResult (indexed by request id). The wire messages are declared once, in
syscalls/worker_messages.py, for the kernel and the worker alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kernel.scheduler.request import WorkerId
from syscalls.worker_messages import (
    CheckpointSpec,
    EvictResult,
    EvictSpec,
    LoadResult,
    LoadSpec,
    PlanDone,
    PlanRequest,
    SeqResult,
)

__all__ = ["CheckpointSpec", "EvictResult", "EvictSpec", "LoadResult", "LoadSpec", "Plan", "PlanResult", "SeqResult"]


def checkpoint_key(rid: str, number: int) -> str:
    """The default LMDB key of a request's checkpoint (the kernel uses its own, see WorkerKeys)."""
    return f"{rid}#c{number}"


@dataclass(slots=True)
class Plan:
    plan_id: int
    worker_id: WorkerId
    steps: int
    dispatch_s: float
    evict: list[EvictSpec] = field(default_factory=list)
    load: list[LoadSpec] = field(default_factory=list)
    decode: list[str] = field(default_factory=list)
    checkpoint: list[CheckpointSpec] = field(default_factory=list)  # key: the checkpoint's number
    is_continuation: bool = False  # the running batch again (lookahead "continue"): decode and checkpoints only
    is_successor: bool = False  # after a batch that surely finishes (lookahead "continue"): others, loaded here
    is_revoking: bool = False  # a revoke was sent: the worker answers it revoked, or done if it had started it
    first_scheduled: list[str] = field(default_factory=list)  # rids this plan scheduled for the first time

    @property
    def is_revocable(self) -> bool:
        """A lookahead plan the policy may take back before it starts (see Scheduler.revocations)."""
        return self.is_continuation or self.is_successor

    def rids(self) -> list[str]:
        """Every request in the plan (evicted, loaded or decoded), each once."""
        seen = dict.fromkeys(e.rid for e in self.evict)
        seen.update(dict.fromkeys(s.rid for s in self.load))
        seen.update(dict.fromkeys(self.decode))
        return list(seen)

    def to_wire(self, key: Callable[[str], str] = str, snapshot: Callable[[str, int], str] = checkpoint_key) -> dict:
        """The PlanRequest map, each request named by `key(rid)` (the worker-side key) and each
        checkpoint by `snapshot(rid, number)`."""
        evict = [EvictSpec(key(e.rid), e.mode) for e in self.evict]
        load = [LoadSpec(key(x.rid), x.mode, x.prompt_ids, x.params,
                         None if x.source is None else snapshot(x.rid, x.source)) for x in self.load]
        checkpoint = [CheckpointSpec(key(c.rid), snapshot(c.rid, c.key)) for c in self.checkpoint]
        return PlanRequest(self.plan_id, evict, load, [key(r) for r in self.decode], self.steps, checkpoint).to_wire()


@dataclass(slots=True)
class PlanResult:
    worker_id: WorkerId
    plan_id: int
    t_start: float
    t_end: float
    evicted: dict[str, EvictResult]
    loaded: dict[str, LoadResult]
    results: dict[str, SeqResult]
    checkpointed: dict[str, EvictResult] = field(default_factory=dict)
    is_revoked: bool = False  # the worker dropped the plan unstarted, as a revoke asked

    @classmethod
    def from_wire(cls, msg: dict) -> PlanResult:
        """Parse a `plan_done` map; raise ValueError naming the missing/bad field."""
        try:
            return cls.from_done(PlanDone.from_wire(msg))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad plan_done message: {exc!r}") from None

    @classmethod
    def from_done(cls, done: PlanDone, rid_of: Callable[[Any], Any] = lambda key: key) -> PlanResult:
        """The scheduler's view of a PlanDone: each part indexed by request id (`rid_of` a
        worker-side key; parts naming no live request are dropped)."""
        def index(items: list) -> dict:
            by_rid = {}
            for item in items:
                rid = rid_of(item.rid)
                if rid is not None:
                    item.rid = rid
                    by_rid[rid] = item
            return by_rid

        return cls(
            worker_id=done.worker_id, plan_id=done.plan_id, t_start=done.t_start, t_end=done.t_end,
            evicted=index(done.evicted), loaded=index(done.loaded), results=index(done.results),
            checkpointed=index(done.checkpointed), is_revoked=done.revoked,
        )
