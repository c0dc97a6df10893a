"""Plans (kernel -> worker `plan`) and their results (worker -> kernel `plan_done`).

Wire shapes are those of docs/architecture.md, "Kernel <-> worker protocol". to_wire() and
from_wire() are the only translations; the codec packs the maps. Parsers tolerate extra fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.scheduler.request import WorkerId
from syscalls.worker_messages import EvictResult, EvictSpec, LoadResult, LoadSpec, SeqResult

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
        return {
            "type": "plan",
            "plan_id": self.plan_id,
            "evict": [e.to_wire() for e in self.evict],
            "load": [s.to_wire() for s in self.load],
            "decode": list(self.decode),
            "steps": self.steps,
        }


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
            return cls(
                worker_id=msg["worker_id"],
                plan_id=msg["plan_id"],
                t_start=float(msg["t_start"]),
                t_end=float(msg["t_end"]),
                evicted=_by_rid(EvictResult, msg.get("evicted", [])),
                loaded=_by_rid(LoadResult, msg.get("loaded", [])),
                results=_by_rid(SeqResult, msg.get("results", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad plan_done message: {exc!r}") from None


def _by_rid(cls: type, items: list[dict]) -> dict[str, Any]:
    names = set(cls.__slots__)
    return {item["rid"]: cls(**{k: v for k, v in item.items() if k in names}) for item in items}
