"""LLMService: llm.* requests from agents -> scheduler core -> worker plans -> replies.

Contract: kernel main thread only. Data flows one way: a submission goes to the scheduler; a
worker that is idle gets the scheduler's next plan; a plan_done updates the scheduler, whose
finished requests are answered here. The scheduler owns request state; this class owns the
Deferred replies, the prompt codec and the worker pool.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel.context import DEFERRED, CallContext, Deferred
from kernel.llm.leftovers import clear_snapshots
from kernel.llm.metrics import History
from kernel.llm.prompt import PromptCodec, Window
from kernel.llm.sched_adapter import SchedulerAdapter
from kernel.llm.workers import WorkerEvents, WorkerHandle, WorkerPool
from syscalls.digests import unpack_float32
from syscalls.errors import ErrorCode, SyscallError
from syscalls.worker_messages import FreeRequest, PlanDone

if TYPE_CHECKING:
    from kernel.kernel import Kernel

log = logging.getLogger("aiosim.llm")

PARAM_KEYS = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "num_beams", "length_penalty",
              "early_stopping", "stop", "stop_token_ids", "logprobs")


@dataclass(slots=True)
class Submission:
    """A validated llm.generate call, possibly waiting for the model to load."""

    rid: str
    agent: str
    args: dict
    arrival_s: float
    reply: Deferred | None  # None for internal requests (summaries)
    on_done: Any = None  # internal continuation: fn(result dict) for summaries
    prompt_ids: list[int] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)  # tokens it has produced (streamed, if streaming)
    cursor: int = 0  # tokens its current attempt has produced (< len(delivered) while replaying)


class LLMService:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.config = kernel.config
        self.pool = WorkerPool(self.config, kernel.loop, WorkerEvents(self._on_ready, self._on_message, self._on_dead))
        self.codec: PromptCodec | None = None
        self.sched: SchedulerAdapter | None = None
        self.unready: list[Submission] = []  # arrived before any worker was ready
        self.live: dict[str, Submission] = {}
        self.history = History()
        self._counters: dict[str, int] = {}
        self.unavailable = ""  # why llm.* cannot be served (every worker given up after crashing in a row)
        self.pending_frees: list[str] = []  # worker-side keys to free once a worker is ready

    def start(self) -> None:
        left = clear_snapshots(self.config.state_dir / "snapshots.lmdb")  # before any worker opens it
        if left:
            log.warning("removed %d snapshot entries left in %s by an earlier kernel", left, self.config.state_dir)
        self.pool.start()

    # ---- from handlers ----
    def submit(self, ctx: CallContext, args: dict) -> object:
        if self.config.num_workers == 0:
            raise SyscallError(ErrorCode.UNAVAILABLE, "this kernel runs no workers (--workers 0): llm.* is unavailable")
        if self.unavailable:
            raise SyscallError(ErrorCode.UNAVAILABLE, self.unavailable)
        if args["logprobs"] and args["num_beams"] > 1:
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, "field 'logprobs': not available with num_beams >= 2")
        rid = self._request_id(ctx.caller, args["request_id"])
        sub = Submission(rid, ctx.caller, args, time.monotonic(), ctx.defer())
        self.live[rid] = sub
        if self.sched is None:
            self.unready.append(sub)
        else:
            self._admit(sub)
        return DEFERRED

    def _request_id(self, agent: str, label: str | None) -> str:
        if label is None:
            n = self._counters.get(agent, 0)
            self._counters[agent] = n + 1
            label = f"{agent}/{n}"
        rid = full_request_id(agent, label)
        if rid in self.live:
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"request '{rid}' is still in flight")
        return rid

    def _admit(self, sub: Submission) -> None:
        """Tokenize, apply the context policy, hand to the scheduler; errors fail this request only."""
        try:
            ids = self.codec.encode(sub.args["prompt"])
            max_new = sub.args["max_new_tokens"]
            if not self.codec.fits(len(ids), max_new):
                policy = sub.args["context_policy"]
                if policy == "error":
                    raise self.codec.too_long(len(ids), max_new)
                if policy == "truncate":
                    ids = self.codec.truncate(sub.args["prompt"], max_new)
                else:
                    self._start_summary(sub, ids)
                    return
            self._enqueue(sub, ids)
        except SyscallError as err:
            self._fail(sub.rid, err.code, err.message)
        except Exception as exc:  # a bug must cost this request only, never the queue behind it
            log.exception("admitting %s failed", sub.rid)
            self._fail(sub.rid, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    def _enqueue(self, sub: Submission, ids: list[int]) -> None:
        """Hand a tokenized request to the scheduler; a refusal fails this request only."""
        sub.prompt_ids = ids
        params = {k: sub.args[k] for k in PARAM_KEYS}
        if params["seed"] is None:
            params["seed"] = _stable_seed(sub.rid)
        try:
            self.sched.submit(sub.rid, sub.agent, ids, params, sub.args["priority"], sub.arrival_s)
        except SyscallError as err:
            self._fail(sub.rid, err.code, err.message)
            return
        self._kick()

    def _start_summary(self, sub: Submission, ids: list[int]) -> None:
        from kernel.llm.summary import summary_submission

        internal = summary_submission(self, sub, ids)
        self.live[internal.rid] = internal
        self._enqueue(internal, internal.prompt_ids)

    def cancel(self, agent: str, label: str) -> bool:
        rid = full_request_id(agent, label)
        if rid not in self.live:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no request '{rid}' in flight")
        self._cancel(rid, "cancelled by llm.cancel")
        return True

    def _cancel(self, rid: str, why: str) -> None:
        if self.sched is not None and self.sched.core.get(rid) is not None:
            self.sched.cancel(rid)
        self._fail(rid, ErrorCode.CANCELLED, why)
        summary = self.live.get(f"{rid}#summary")
        if summary is not None:
            self._cancel(summary.rid, why)

    def snapshots(self, agent: str) -> list[dict]:
        return self.sched.snapshot_index(agent) if self.sched is not None else []

    def on_agent_exit(self, agent: str) -> int:
        rids = [s.rid for s in self.live.values() if s.agent == agent and s.reply is not None]
        for rid in rids:
            self._cancel(rid, f"agent {agent} exited")
        self.unready = [s for s in self.unready if s.agent != agent]
        return len(rids)

    def num_active(self, agent: str) -> int:
        return sum(1 for s in self.live.values() if s.agent == agent)

    # ---- worker events ----
    def _on_ready(self, w: WorkerHandle) -> None:
        if self.sched is None:
            m = w.model
            self.codec = PromptCodec(m["model_dir"], Window(m["max_context"], m["vocab_size"]))
            self.sched = SchedulerAdapter(self.config, m, self.history, self._send_free)
        self.sched.add_worker(w.worker_id)
        if self.pending_frees:
            keys, self.pending_frees = self.pending_frees, []
            self._send_free(w.worker_id, keys)
        pending, self.unready = self.unready, []
        for sub in pending:
            self._admit(sub)
        self._kick()

    def _on_message(self, w: WorkerHandle, msg: PlanDone) -> None:
        if msg.plan_id != w.plan_id:
            log.warning("unexpected plan_done %r from worker %d", msg.plan_id, w.worker_id)
            return
        w.plan_id = None
        self.pool.note_progress(w.worker_id)
        outcome = self.sched.on_plan_done(w.worker_id, msg)
        self._kick(back_to_back=w.worker_id)  # the worker starts its next slice while we reply
        self._deliver(outcome)

    def _on_dead(self, w: WorkerHandle, why: str) -> None:
        if self.sched is not None and w.worker_id in self.sched.core.workers:
            recovered = self.sched.remove_worker(w.worker_id)  # a respawn re-adds it when ready
            for rid, resume in recovered.items():
                if rid in self.live:
                    self.live[rid].cursor = resume
            log.warning("%s: %d request(s) replay from their checkpoints or prompts", why, len(recovered))
        if self.pool.is_exhausted:
            self.unavailable = (f"no LLM worker left ({why}; it crashed {self.pool.crashes.get(w.worker_id)} times in a row"
                                f" without finishing a plan, {self.pool.num_respawns} respawns in all): "
                                f"see {self.config.state_dir}/worker-{w.worker_id}.log")
            for rid in list(self.live):
                if self.sched is not None and self.sched.core.get(rid) is not None:
                    self.sched.cancel(rid)  # nobody will run it
                self._fail(rid, ErrorCode.UNAVAILABLE, self.unavailable)
            self.unready.clear()
        self._kick()

    def _kick(self, back_to_back: int | None = None) -> None:
        """Give every idle worker its next plan (back_to_back: the worker whose plan_done we
        just handled, for the overhead figures)."""
        if self.sched is None:
            return
        for w in self.pool.idle():
            if not w.is_idle or self.pool.workers.get(w.worker_id) is not w:  # changed by a failed send below
                continue
            plan = self.sched.next_plan(w.worker_id, w.worker_id == back_to_back)
            if plan is None:
                continue
            w.plan_id = plan["plan_id"]
            if not self.pool.send(w.worker_id, plan):  # undone: the worker is replaced, its requests requeued
                self.pool.fail(w, f"worker {w.worker_id}: plan {plan['plan_id']} could not be sent; killed")

    def _deliver(self, outcome: Any) -> None:
        for rid, token_ids in outcome.streamed:
            sub = self.live.get(rid)
            fresh = self._replayed(sub, token_ids) if sub is not None else []
            is_beam = sub is not None and sub.args["num_beams"] >= 2  # beam search streams nothing (spec)
            if sub is not None and sub.reply is not None and sub.args["stream"] and fresh and not is_beam:
                sub.reply.stream({"request_id": rid, "token_ids": fresh, "text": self.codec.decode(fresh)})
        for done in outcome.finished:
            self._finish(done)
        for rid, code, message in outcome.failed:
            self._fail(rid, code, message)

    def _replayed(self, sub: Submission, token_ids: list[int]) -> list[int]:
        """Check a slice's tokens against what the request already produced (a replay after its
        worker died must make the same ones); returns the new ones, to stream. A mismatch
        fails the request with REPLAY_DIVERGED and returns nothing."""
        start, sub.cursor = sub.cursor, sub.cursor + len(token_ids)
        known = sub.delivered[start : start + len(token_ids)]
        if token_ids[: len(known)] != known:
            self._fail(sub.rid, ErrorCode.REPLAY_DIVERGED,
                       f"the replay of {sub.rid} made {token_ids[: len(known)]} at token {start}, not {known}")
            return []
        fresh = token_ids[len(known):]
        sub.delivered += fresh
        return fresh

    def _finish(self, done: dict) -> None:
        sub = self.live.get(done["rid"])
        if sub is None:
            return
        ids = done["output_ids"]
        if sub.args["num_beams"] < 2 and ids[: len(sub.delivered)] != sub.delivered:
            self._fail(sub.rid, ErrorCode.REPLAY_DIVERGED,
                       f"{sub.rid} finished with {len(ids)} tokens that differ from the {len(sub.delivered)} it produced before")
            return
        del self.live[sub.rid]
        text = self.codec.decode(ids)
        if done["finish_reason"] == "stop" and sub.args["stop"]:
            text = trim_at_stop(text, sub.args["stop"])
        result = {"request_id": sub.rid, "text": text, "token_ids": ids,
                  "finish_reason": done["finish_reason"], "prompt_tokens": len(sub.prompt_ids),
                  "timing": done["timing"]}
        if sub.args["logprobs"]:
            result["logprobs"] = unpack_float32(done["output_logprobs"] or b"")
        if sub.on_done is not None:
            sub.on_done(result)
        elif sub.reply is not None:
            sub.reply.ok(result)

    def _fail(self, rid: str, code: ErrorCode | str, message: str) -> None:
        sub = self.live.pop(rid, None)
        if sub is None:
            return
        log.info("request %s failed: %s: %s", rid, ErrorCode(code).value, message)
        if sub.on_done is not None:
            sub.on_done(SyscallError(code, message))
        elif sub.reply is not None:
            sub.reply.error(code, message)

    def _send_free(self, wid: int | None, keys: list[str]) -> None:
        """Free resident KV on `wid`, or (None, or `wid` is gone) have any ready worker delete
        LMDB entries; with no worker ready, the free waits for the next one that is."""
        if wid is None or wid not in self.pool.workers:
            ready = [w for w in self.pool.workers.values() if w.is_ready]
            if not ready:
                self.pending_frees += keys
                return
            wid = ready[0].worker_id
        if not self.pool.send(wid, FreeRequest(keys).to_wire()):
            self.pending_frees += keys

    # ---- introspection and lifecycle ----
    def stats(self, agent: str | None) -> dict:
        workers = [w.to_wire() for w in self.pool.workers.values()]
        base = {"policy": self.config.scheduler, "config": self.sched_config(), "workers": workers,
                "overhead": self.sched.overhead.to_wire() if self.sched else None}
        return {**base, **self.history.to_wire(agent, self.sched.active_timelines(agent) if self.sched else [])}

    def sched_config(self) -> dict:
        c = self.config
        sched = self.sched.config if self.sched is not None else None
        return {"quantum": c.quantum, "max_batch": c.max_batch, "preempt": c.preempt, "num_workers": c.num_workers,
                "model": c.model, "engine": c.engine, "kv_pool_bytes": c.kv_pool_bytes,
                "kv_budget_bytes": sched.kv_budget_bytes if sched else None,
                "kv_block_tokens": sched.kv_block_tokens if sched else None}

    def check_integrity(self) -> None:
        if self.sched is not None:
            self.sched.check_integrity()
            assert set(self.sched.live_rids()) <= set(self.live), "scheduler holds a request nobody waits for"

    def close(self) -> None:
        for rid in list(self.live):
            self._fail(rid, ErrorCode.UNAVAILABLE, "kernel shutting down")
        self.pool.close()


def full_request_id(agent: str, label: str) -> str:
    """Request ids are '<agent>/<label>'; a label that already carries the prefix keeps it."""
    return label if label.startswith(f"{agent}/") else f"{agent}/{label}"


def trim_at_stop(text: str, stops: list[str]) -> str:
    """Text up to the earliest stop string (token ids keep the tokens that produced it)."""
    cuts = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


def _stable_seed(rid: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.blake2b(rid.encode(), digest_size=8).digest(), "little") >> 1
