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
    source: Any = None  # restore only: the checkpoint to restore from (kept); None: the rid's own snapshot (consumed)

    def to_wire(self) -> dict:
        if self.mode == "prefill":
            return {"rid": self.rid, "mode": "prefill", "prompt_ids": self.prompt_ids, "params": self.params}
        if self.source is not None:
            return {"rid": self.rid, "mode": self.mode, "source": self.source}
        return {"rid": self.rid, "mode": self.mode}


@dataclass(slots=True)
class CheckpointSpec:
    """After the plan's decode: snapshot resident request `rid` (KV included) under `key`, and
    keep it resident. The kernel frees the key once a newer checkpoint or the request's end
    replaces it."""

    rid: Any
    key: Any

    def to_wire(self) -> dict:
        return {"rid": self.rid, "key": self.key}


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


@dataclass(slots=True)
class PlanDone:
    """worker -> kernel: the results of one plan, in the plan's order."""

    worker_id: int
    plan_id: Any
    t_start: float  # time.monotonic(): CLOCK_MONOTONIC is shared with the kernel
    t_end: float
    evicted: list[EvictResult] = field(default_factory=list)
    loaded: list[LoadResult] = field(default_factory=list)
    results: list[SeqResult] = field(default_factory=list)
    checkpointed: list[EvictResult] = field(default_factory=list)
    revoked: bool = False  # the plan was dropped unstarted, as a `revoke` asked: no other part
    type: str = "plan_done"

    def to_wire(self) -> dict:
        return {"type": "plan_done", "worker_id": self.worker_id, "plan_id": self.plan_id, "t_start": self.t_start,
                "t_end": self.t_end, "evicted": [e.to_wire() for e in self.evicted],
                "loaded": [x.to_wire() for x in self.loaded], "results": [r.to_wire() for r in self.results],
                "checkpointed": [c.to_wire() for c in self.checkpointed], "revoked": self.revoked}

    @classmethod
    def from_wire(cls, msg: dict) -> PlanDone:
        """Raises KeyError/TypeError/ValueError on a missing or bad field."""
        return cls(
            worker_id=msg["worker_id"], plan_id=msg["plan_id"], t_start=float(msg["t_start"]), t_end=float(msg["t_end"]),
            evicted=_items(EvictResult, msg.get("evicted", [])), loaded=_items(LoadResult, msg.get("loaded", [])),
            results=_items(SeqResult, msg.get("results", [])),
            checkpointed=_items(EvictResult, msg.get("checkpointed") or []), revoked=bool(msg.get("revoked")),
        )


@dataclass(slots=True)
class PlanRequest:
    """kernel -> worker: evict, then load, then decode `decode` together for up to `steps` steps,
    then checkpoint."""

    plan_id: Any
    evict: list[EvictSpec] = field(default_factory=list)
    load: list[LoadSpec] = field(default_factory=list)
    decode: list[Any] = field(default_factory=list)
    steps: int = 0
    checkpoint: list[CheckpointSpec] = field(default_factory=list)
    type: str = "plan"

    def to_wire(self) -> dict:
        return {"type": "plan", "plan_id": self.plan_id, "evict": [e.to_wire() for e in self.evict],
                "load": [x.to_wire() for x in self.load], "decode": list(self.decode), "steps": self.steps,
                "checkpoint": [c.to_wire() for c in self.checkpoint]}

    @classmethod
    def from_wire(cls, msg: dict) -> PlanRequest:
        """Missing parts are empty; raises TypeError/ValueError on a malformed part."""
        return cls(
            plan_id=msg.get("plan_id"), evict=_items(EvictSpec, msg.get("evict") or []),
            load=_items(LoadSpec, msg.get("load") or []), decode=list(msg.get("decode") or []),
            steps=int(msg.get("steps") or 0), checkpoint=_items(CheckpointSpec, msg.get("checkpoint") or []),
        )


@dataclass(slots=True)
class Revoke:
    """kernel -> worker: drop plan `plan_id` if it has not started (answer it `revoked`), else
    ignore this. Only a lookahead continuation is revoked (see docs/architecture.md). No reply."""

    plan_id: Any
    type: str = "revoke"

    def to_wire(self) -> dict:
        return {"type": "revoke", "plan_id": self.plan_id}

    @classmethod
    def from_wire(cls, msg: dict) -> Revoke:
        return cls(plan_id=msg.get("plan_id"))


@dataclass(slots=True)
class FreeRequest:
    """kernel -> worker: forget these requests (resident KV and every LMDB entry). No reply."""

    rids: list[Any] = field(default_factory=list)
    type: str = "free"

    def to_wire(self) -> dict:
        return {"type": "free", "rids": list(self.rids)}

    @classmethod
    def from_wire(cls, msg: dict) -> FreeRequest:
        return cls(rids=list(msg.get("rids") or []))


@dataclass(slots=True)
class Shutdown:
    """kernel -> worker: close LMDB and sockets, exit 0."""

    type: str = "shutdown"

    def to_wire(self) -> dict:
        return {"type": "shutdown"}

    @classmethod
    def from_wire(cls, msg: dict) -> Shutdown:
        return cls()


@dataclass(slots=True)
class Ready:
    """worker -> kernel, once its model is loaded: `model` is the model and engine description."""

    worker_id: int
    pid: int
    model: dict = field(default_factory=dict)
    type: str = "ready"

    def to_wire(self) -> dict:
        return {"type": "ready", "worker_id": self.worker_id, "pid": self.pid, "model": self.model}

    @classmethod
    def from_wire(cls, msg: dict) -> Ready:
        return cls(worker_id=int(msg["worker_id"]), pid=int(msg["pid"]), model=dict(msg.get("model") or {}))


@dataclass(slots=True)
class Heartbeat:
    """worker -> kernel, every heartbeat_s, busy or idle."""

    worker_id: int
    time: float = 0.0
    type: str = "heartbeat"

    def to_wire(self) -> dict:
        return {"type": "heartbeat", "worker_id": self.worker_id, "time": self.time}

    @classmethod
    def from_wire(cls, msg: dict) -> Heartbeat:
        return cls(worker_id=int(msg["worker_id"]), time=float(msg.get("time") or 0.0))


TO_WORKER: dict[str, type] = {"plan": PlanRequest, "revoke": Revoke, "free": FreeRequest, "shutdown": Shutdown}
TO_KERNEL: dict[str, type] = {"ready": Ready, "heartbeat": Heartbeat, "plan_done": PlanDone}


def parse(msg: Any, table: dict[str, type]) -> Any:
    """The typed message of a decoded map (TO_WORKER or TO_KERNEL); ValueError names what is wrong."""
    if not isinstance(msg, dict):
        raise ValueError("not a map")
    kind = table.get(msg.get("type"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError(f"unknown message type {msg.get('type')!r}")
    try:
        return kind.from_wire(msg)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad {msg.get('type')} message: {exc!r}") from None


def _items(cls: type, items: list[dict]) -> list[Any]:
    names = set(cls.__slots__)
    return [cls(**{k: v for k, v in item.items() if k in names}) for item in items]
