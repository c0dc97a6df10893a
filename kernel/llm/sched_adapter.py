"""The kernel's side of the scheduler core: the clock, wire translation, frees, history and the
scheduler+IPC overhead figures. Owner: LLMService (kernel main thread)."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kernel.config import KernelConfig
from kernel.llm.metrics import History
from kernel.scheduler import (
    Completion,
    PlanResult,
    SchedConfig,
    SeqRequest,
    SeqState,
    make_scheduler,
)
from kernel.scheduler.request import SchedulerError
from syscalls.digests import bytes_sha256, output_sha256
from syscalls.worker_messages import PlanDone

log = logging.getLogger("aiosim.sched")

SendFree = Callable[[int | None, list[str]], None]


@dataclass(slots=True)
class Outcome:
    """What a plan_done means for the agents: tokens to stream, requests finished or failed."""

    streamed: list[tuple[str, list[int]]] = field(default_factory=list)
    finished: list[dict] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Overhead:
    """Worker busy time vs the gap between back-to-back plans (kernel scheduling + IPC)."""

    num_plans: int = 0
    num_steps: int = 0
    busy_s: float = 0.0
    num_gap_steps: int = 0
    gap_s: float = 0.0

    def to_wire(self) -> dict:
        busy_per_step = self.busy_s / self.num_steps if self.num_steps else None
        gap_per_step = self.gap_s / self.num_gap_steps if self.num_gap_steps else None
        ratio = gap_per_step / busy_per_step if gap_per_step is not None and busy_per_step else None
        return {"num_plans": self.num_plans, "num_steps": self.num_steps, "busy_s": self.busy_s,
                "gap_s": self.gap_s, "busy_per_step_s": busy_per_step, "gap_per_step_s": gap_per_step,
                "overhead_ratio": ratio}


class WorkerKeys:
    """The worker-side key of each live request: `<incarnation>.<n>`, never reused (a random
    incarnation per kernel start, a counter within it), and new for every attempt, so a late
    free or a dead worker's leftovers can never touch a later request's state or snapshot."""

    def __init__(self) -> None:
        self.incarnation = os.urandom(6).hex()
        self._numbers = itertools.count()
        self._keys: dict[str, str] = {}
        self._rids: dict[str, str] = {}
        self._firsts: dict[str, str] = {}  # rid -> its first key: names its checkpoints

    def assign(self, rid: str) -> str:
        """A fresh key for `rid` (its first, or the next attempt's)."""
        self._rids.pop(self._keys.get(rid, ""), None)
        key = f"{self.incarnation}.{next(self._numbers)}"
        self._keys[rid], self._rids[key] = key, rid
        self._firsts.setdefault(rid, key)
        return key

    def checkpoint(self, rid: str, number: int) -> str:
        """The LMDB key of `rid`'s checkpoint `number` (the same across its attempts)."""
        return f"{self._firsts[rid]}.c{number}"

    def key(self, rid: str) -> str:
        return self._keys[rid]

    def rid(self, key: object) -> str | None:
        """The live request a worker-side key names, or None (stale or unknown)."""
        return self._rids.get(key) if isinstance(key, str) else None

    def release(self, rid: str) -> str:
        key = self._keys.pop(rid)
        del self._rids[key]
        self._firsts.pop(rid, None)
        return key


class SchedulerAdapter:
    def __init__(self, config: KernelConfig, model: dict, history: History, send_free: SendFree) -> None:
        """`model`: the first worker's ready message; its KV pool (when it has one) is the budget."""
        opts = dict(config.sched_options)
        pool = model.get("kv_pool") or {}
        self.config = SchedConfig(policy=config.scheduler, quantum=config.quantum, max_batch=config.max_batch,
                                  kv_budget_bytes=pool.get("pool_bytes", config.kv_pool_bytes),
                                  kv_block_tokens=pool.get("block_size", 1), preempt=config.preempt, **opts)
        self.core = make_scheduler(self.config, model["kv_bytes_per_token"])
        self.history = history
        self.send_free = send_free
        self.overhead = Overhead()
        self._last_end: dict[int, float] = {}  # worker -> t_end of its last plan
        self._back_to_back: set[int] = set()  # workers whose outstanding plan followed a plan_done at once
        self._snapshot_bytes: dict[str, int] = {}  # the index: rid -> bytes of its LMDB snapshot
        self.keys = WorkerKeys()

    def add_worker(self, wid: int) -> None:
        self.core.add_worker(wid)

    def submit(self, rid: str, agent: str, prompt_ids: list[int], params: dict, priority: int, arrival_s: float) -> None:
        req = SeqRequest(rid, agent, arrival_s, len(prompt_ids), params["max_new_tokens"], params["num_beams"], priority)
        try:
            self.core.submit(req, prompt_ids, params, time.monotonic())
        except SchedulerError as err:
            from syscalls.errors import SyscallError

            raise SyscallError(err.code, str(err)) from None
        self.keys.assign(rid)

    def cancel(self, rid: str) -> None:
        effect = self.core.cancel(rid, time.monotonic())
        if effect.completion is not None:
            self._complete(effect.completion, Outcome())

    def next_plan(self, wid: int, is_back_to_back: bool = False) -> dict | None:
        plan = self.core.next_plan(wid, time.monotonic())
        if plan is None:
            return None
        if is_back_to_back:
            self._back_to_back.add(wid)
        return plan.to_wire(self.keys.key, self.keys.checkpoint)

    def on_plan_done(self, wid: int, done: PlanDone) -> Outcome:
        result = PlanResult.from_done(done, self.keys.rid)
        self._account(wid, result)
        for rid, ev in result.evicted.items():
            if not ev.error:
                self._snapshot_bytes[rid] = ev.snapshot_bytes
        out = Outcome()
        for rid, res in result.results.items():
            if res.new_token_ids:
                out.streamed.append((rid, list(res.new_token_ids)))
        completions = self.core.on_plan_done(wid, result, time.monotonic())
        self._free_stale_checkpoints()  # before _complete forgets the keys that name them
        for completion in completions:
            self._complete(completion, out)
        return out

    def _free_stale_checkpoints(self) -> None:
        keys = [self.keys.checkpoint(rid, n) for rid, n in self.core.take_stale_checkpoints()]
        if keys:
            self.send_free(None, keys)

    def _account(self, wid: int, result: PlanResult) -> None:
        o = self.overhead
        steps = max((r.num_steps for r in result.results.values()), default=0)
        o.num_plans += 1
        o.num_steps += steps
        o.busy_s += max(0.0, result.t_end - result.t_start)
        if wid in self._back_to_back and wid in self._last_end:
            o.gap_s += max(0.0, result.t_start - self._last_end[wid])
            o.num_gap_steps += steps
        self._back_to_back.discard(wid)
        self._last_end[wid] = result.t_end

    def remove_worker(self, wid: int) -> dict[str, int]:
        """A dead worker; returns the requests that replay, each with the number of generated
        tokens it resumes from (its checkpoint's, or 0), under a new worker-side key (whatever
        the dead worker left under the old one is freed)."""
        loss = self.core.remove_worker(wid, time.monotonic())
        self._free_stale_checkpoints()
        for completion in loss.completions:
            self._complete(completion, Outcome())
        for rid in loss.recovered:
            self._snapshot_bytes.pop(rid, None)
            self.send_free(None, [self.keys.key(rid)])
            self.keys.assign(rid)
        self._last_end.pop(wid, None)
        return loss.recovered

    def snapshot_index(self, agent: str) -> list[dict]:
        """The agent's requests now swapped out to LMDB (kept by the kernel; bytes stay in LMDB)."""
        rows = []
        for req in self.core.requests():
            if req.agent == agent and req.has_snapshot:
                rows.append({"request_id": req.rid, "bytes": self._snapshot_bytes.get(req.rid, 0),
                             "has_kv": req.is_snapshot_kv})
        return rows

    def _complete(self, c: Completion, out: Outcome) -> None:
        req = c.request
        self._snapshot_bytes.pop(req.rid, None)
        if c.checkpoint is not None:
            self.send_free(None, [self.keys.checkpoint(req.rid, c.checkpoint)])
        key = self.keys.release(req.rid)
        if c.needs_free:
            self.send_free(c.free_worker, [key])
        self.history.add(self._record(req), req.timeline)
        if req.state is SeqState.FINISHED:
            out.finished.append({"rid": req.rid, "output_ids": list(req.output_ids or []), "output_logprobs": req.output_logprobs,
                                 "finish_reason": req.finish_reason, "timing": req.timeline.timing()})
        elif req.state is SeqState.FAILED:
            err = req.error or {"code": "INTERNAL", "message": "failed"}
            out.failed.append((req.rid, err["code"], err["message"]))

    def _record(self, req: SeqRequest) -> dict:
        row = req.timeline.to_dict()
        ids = list(req.output_ids or [])
        row.update(state=req.state.value, output_tokens=len(ids), output_sha256=output_sha256(ids),
                   logprobs_sha256=None if req.output_logprobs is None else bytes_sha256(req.output_logprobs),
                   prompt_tokens=req.prompt_len, finish_reason=req.finish_reason, error=req.error)
        return row

    def active_timelines(self, agent: str | None) -> list[dict]:
        rows = []
        for req in self.core.requests():
            if agent is None or req.agent == agent:
                row = req.timeline.to_dict()
                state = "cancelling" if req.is_cancel_requested else req.state.value
                row.update(state=state, output_tokens=req.num_generated)
                rows.append(row)
        return rows

    def live_rids(self) -> list[str]:
        """Requests someone still waits for (a cancel-pending one leaves with its plan)."""
        return [r.rid for r in self.core.requests() if not r.is_cancel_requested]

    def check_integrity(self) -> None:
        self.core.check_integrity()
