"""The scheduler's plans and their results: a Plan is sent as a PlanRequest, a PlanDone comes
back as a PlanResult (indexed by request id). The wire messages are declared once, in
syscalls/worker_messages.py, for the kernel and the worker alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.scheduler.request import WorkerId
from syscalls.worker_messages import (
    EvictResult,
    EvictSpec,
    LoadResult,
    LoadSpec,
    PlanDone,
    PlanRequest,
    SeqResult,
)

__all__ = ["EvictResult", "EvictSpec", "LoadResult", "LoadSpec", "Plan", "PlanResult", "SeqResult"]


@dataclass(slots=True)
class Plan:
    plan_id: int
    worker_id: WorkerId
    steps: int
    dispatch_s: float
    evict: list[EvictSpec] = field(default_factory=list)
    load: list[LoadSpec] = field(default_factory=list)
    decode: list[str] = field(default_factory=list)

    def rids(self) -> list[str]:
        """Every request in the plan (evicted, loaded or decoded), each once."""
        seen = dict.fromkeys(e.rid for e in self.evict)
        seen.update(dict.fromkeys(s.rid for s in self.load))
        seen.update(dict.fromkeys(self.decode))
        return list(seen)

    def to_wire(self) -> dict:
        return PlanRequest(self.plan_id, self.evict, self.load, list(self.decode), self.steps).to_wire()


@dataclass(slots=True)
class PlanResult:
    worker_id: WorkerId
    plan_id: int
    t_start: float
    t_end: float
    evicted: dict[str, EvictResult]
    loaded: dict[str, LoadResult]
    results: dict[str, SeqResult]

    @classmethod
    def from_wire(cls, msg: dict) -> PlanResult:
        """Parse a `plan_done` map; raise ValueError naming the missing/bad field."""
        try:
            return cls.from_done(PlanDone.from_wire(msg))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad plan_done message: {exc!r}") from None

    @classmethod
    def from_done(cls, done: PlanDone) -> PlanResult:
        """The scheduler's view of a PlanDone: each part indexed by request id."""
        return cls(
            worker_id=done.worker_id, plan_id=done.plan_id, t_start=done.t_start, t_end=done.t_end,
            evicted={e.rid: e for e in done.evicted}, loaded={x.rid: x for x in done.loaded},
            results={r.rid: r for r in done.results},
        )
