"""Kernel <-> worker messages: one typed definition each, used by both sides (docs/architecture.md,
"Kernel <-> worker protocol"). `to_wire()` builds the codec map; parsers tolerate extra fields.

Contract: the worker builds its replies from these classes only, the kernel parses them with
`from_wire`; a field added here is added for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _wire(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(slots=True)
class EvictSpec:
    rid: Any
    mode: str  # "swap" | "drop"

    def to_wire(self) -> dict:
        return {"rid": self.rid, "mode": self.mode}


@dataclass(slots=True)
class LoadSpec:
    rid: Any
    mode: str  # "prefill" | "restore"
    prompt_ids: list[int] | None = None  # prefill only
    params: dict | None = None  # GenParams, prefill only (opaque to the scheduler)

    def to_wire(self) -> dict:
        if self.mode == "prefill":
            return {"rid": self.rid, "mode": "prefill", "prompt_ids": self.prompt_ids, "params": self.params}
        return {"rid": self.rid, "mode": self.mode}


@dataclass(slots=True)
class EvictResult:
    rid: Any
    snapshot_bytes: int = 0
    t_s: float = 0.0
    error: dict | None = None

    def to_wire(self) -> dict:
        return _wire(self)


@dataclass(slots=True)
class LoadResult:
    rid: Any
    mode: str
    prompt_tokens: int = 0
    kv_bytes: int = 0
    t_s: float = 0.0
    error: dict | None = None
    how: str | None = None  # prefill | swap | drop | recompute
    prefilled_tokens: int = 0

    def to_wire(self) -> dict:
        return _wire(self)


@dataclass(slots=True)
class SeqResult:
    rid: Any
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

    def to_wire(self) -> dict:
        return _wire(self)


def plan_done(worker_id: int, plan_id: Any, t_start: float, t_end: float, evicted: list[dict], loaded: list[dict], results: list[dict]) -> dict:
    """The `plan_done` map (its parts built by the to_wire of the classes above); the kernel
    parses it with kernel.scheduler.plan.PlanResult.from_wire."""
    return {"type": "plan_done", "worker_id": worker_id, "plan_id": plan_id, "t_start": t_start, "t_end": t_end,
            "evicted": evicted, "loaded": loaded, "results": results}
