"""Plans (kernel -> worker `plan`) and their results (worker -> kernel `plan_done`).

Wire shapes are those of docs/architecture.md, "Kernel <-> worker protocol". to_wire() and
from_wire() are the only translations; the codec packs the maps. Parsers tolerate extra fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.scheduler.request import WorkerId


@dataclass(slots=True)
class EvictSpec:
    rid: str
    mode: str  # "swap" | "drop"

    def to_wire(self) -> dict:
        return {"rid": self.rid, "mode": self.mode}


@dataclass(slots=True)
class LoadSpec:
    rid: str
    mode: str  # "prefill" | "restore"
    prompt_ids: list[int] | None = None  # prefill only
    params: dict | None = None  # GenParams, prefill only (opaque to the scheduler)

    def to_wire(self) -> dict:
        if self.mode == "prefill":
            return {
                "rid": self.rid,
                "mode": "prefill",
                "prompt_ids": self.prompt_ids,
                "params": self.params,
            }
        return {"rid": self.rid, "mode": self.mode}


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
class EvictResult:
    rid: str
    snapshot_bytes: int = 0
    t_s: float = 0.0
    error: dict | None = None


@dataclass(slots=True)
class LoadResult:
    rid: str
    mode: str
    prompt_tokens: int = 0
    kv_bytes: int = 0
    t_s: float = 0.0
    error: dict | None = None


@dataclass(slots=True)
class SeqResult:
    rid: str
    new_token_ids: list[int] = field(default_factory=list)
    num_steps: int = 0
    num_tokens: int = 0
    kv_bytes: int = 0
    is_finished: bool = False
    finish_reason: str | None = None
    output_ids: list[int] | None = None
    output_logprobs: bytes | None = None  # float32 LE per output token, when asked for
    step_scores: Any = None
    error: dict | None = None


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
