"""LLMService: llm.* requests from agents -> scheduler core -> worker plans -> replies.

Contract: kernel main thread only. Data flows one way: a submission goes to the scheduler; a
worker that is idle gets the scheduler's next plan; a plan_done updates the scheduler, whose
finished requests are answered here. The scheduler owns request state; this class owns the
Deferred replies, the prompt codec and the worker pool.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from kernel.context import DEFERRED, CallContext
from kernel.llm.journal import Journal
from kernel.llm.keys import WorkerKeys, checkpoint_key
from kernel.llm.metrics import History, record_of
from kernel.llm.overhead import OverheadMeter
from kernel.llm.prompt import PromptCodec, Window
from kernel.llm.reattach import Reattachment
from kernel.llm.requests import (
    LiveRequests,
    Submission,
    full_request_id,
    generate_result,
    stable_seed,
    take_slice,
    unstreamed,
)
from kernel.llm.workers import WorkerEvents, WorkerHandle, WorkerPool
from kernel.scheduler import (
    Completion,
    PlanResult,
    SchedConfig,
    Scheduler,
    SeqRequest,
    SeqState,
    make_scheduler,
)
from kernel.scheduler.request import SchedulerError
from syscalls.errors import ErrorCode, SyscallError
from syscalls.worker_messages import FreeRequest, PlanDone, Revoke

if TYPE_CHECKING:
    from kernel.kernel import Kernel

log = logging.getLogger("aiosim.llm")

PARAM_KEYS = ("max_new_tokens", "temperature", "top_k", "top_p", "seed", "num_beams", "length_penalty",
              "early_stopping", "stop", "stop_token_ids", "logprobs")


class LLMService:
    """Owns the scheduler core (the kernel's clock and worker-side keys around it), the worker
    pool, the prompt codec and every pending reply."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.config = kernel.config
        self.pool = WorkerPool(self.config, kernel.loop, WorkerEvents(self._on_ready, self._on_message, self._on_dead))
        self.codec: PromptCodec | None = None
        self.core: Scheduler | None = None  # made when the first worker is ready (its KV pool sizes the budget)
        self.keys = WorkerKeys()
        self.overhead = OverheadMeter()
        self.snapshot_bytes: dict[str, int] = {}  # the snapshot index: rid -> bytes of its LMDB snapshot
        self.unready: list[Submission] = []  # arrived before any worker was ready
        self.live = LiveRequests()
        self.history = History()
        self._counters: dict[str, int] = {}
        self.unavailable = ""  # why llm.* cannot be served (every worker given up after crashing in a row)
        self.pending_frees: list[str] = []  # worker-side keys to free once a worker is ready
        self.journal: Journal | None = None  # opened by start()
        self.reattach = Reattachment(self)

    def start(self) -> None:
        """Recover the journal of an earlier kernel on this state dir, keep the snapshots its
        requests resume from (delete the rest), then start the workers."""
        self.journal = Journal(self.config.state_dir / "journal.lmdb")
        self.reattach.recover(self.journal)
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
        sub = Submission(rid, ctx.caller, args, time.monotonic(), ctx.defer(), journaled=True)
        self.journal.accept(rid, ctx.caller, args)  # before any reply or stream message
        self.reattach.parked.pop(rid, None)  # a reply of an earlier request with this id is superseded
        self.live.add(sub)
        if self.core is None:
            self.unready.append(sub)
        else:
            self._admit(sub)
        return DEFERRED

    def _request_id(self, agent: str, label: str | None) -> str:
        if label is None:
            label = self._next_label(agent)
        rid = full_request_id(agent, label)
        if rid in self.live:
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"request '{rid}' is still in flight")
        return rid

    def _next_label(self, agent: str) -> str:
        """'<agent>/<n>', skipping ids the journal still holds (given by an earlier kernel)."""
        while True:
            n = self._counters.get(agent, 0)
            self._counters[agent] = n + 1
            if f"{agent}/{n}" not in self.live and f"{agent}/{n}" not in self.reattach.parked:
                return f"{agent}/{n}"

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
            params["seed"] = stable_seed(sub.rid)  # fixed here, so a replay draws the same tokens
        req = SeqRequest(sub.rid, sub.agent, sub.arrival_s, len(ids), params["max_new_tokens"], params["num_beams"],
                         sub.args["priority"], sub.args["expected_tokens"], sub.args["program_id"])
        checkpoint = sub.resume[1:] if sub.resume is not None else None
        try:
            self.core.submit(req, ids, params, time.monotonic(), checkpoint)
        except SchedulerError as err:
            self._fail(sub.rid, err.code, str(err))
            return
        if sub.resume is not None:
            self.keys.adopt(sub.rid, sub.resume[0])
            sub.cursor, sub.resume = sub.resume[2], None
        else:
            self.keys.assign(sub.rid)
        self._kick()

    def _start_summary(self, sub: Submission, ids: list[int]) -> None:
        from kernel.llm.summary import summary_submission

        internal = summary_submission(self, sub, ids)
        self.live.add(internal)
        self._enqueue(internal, internal.prompt_ids)

    def cancel(self, agent: str, label: str) -> bool:
        rid = full_request_id(agent, label)
        if rid not in self.live:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no request '{rid}' in flight")
        self.cancel_request(rid, "cancelled by llm.cancel")
        return True

    def cancel_request(self, rid: str, why: str, code: ErrorCode = ErrorCode.CANCELLED) -> None:
        """Reply `code` now; the scheduler lets go of the request now or when its plan returns."""
        if self.core is not None and self.core.get(rid) is not None:
            effect = self.core.cancel(rid, time.monotonic())
            if effect.completion is not None:
                self._let_go(effect.completion)
        self._fail(rid, code, why)
        summary = self.live.get(f"{rid}#summary")
        if summary is not None:
            self.cancel_request(summary.rid, why)

    def attach(self, ctx: CallContext, args: dict) -> object:
        return self.reattach.attach(ctx, args)

    def snapshots(self, agent: str) -> list[dict]:
        """The agent's requests now swapped out to LMDB (the kernel's index; bytes stay in LMDB)."""
        reqs = self.core.requests() if self.core is not None else []
        return [{"request_id": r.rid, "bytes": self.snapshot_bytes.get(r.rid, 0), "has_kv": r.is_snapshot_kv}
                for r in reqs if r.agent == agent and r.has_snapshot]

    def on_agent_exit(self, agent: str) -> int:
        rids = [s.rid for s in self.live.of_agent(agent) if s.reply is not None]
        for rid in rids:
            self.cancel_request(rid, f"agent {agent} exited")
        self.unready = [s for s in self.unready if s.agent != agent]
        return len(rids)

    def active_counts(self) -> dict[str, int]:
        """Requests in flight per agent."""
        return self.live.counts()

    # ---- worker events ----
    def _on_ready(self, w: WorkerHandle) -> None:
        if self.core is None:
            m = w.model
            self.codec = PromptCodec(m["model_dir"], Window(m["max_context"], m["vocab_size"]))
            self.core = make_scheduler(self._sched_config(m), m["kv_bytes_per_token"])
        self.core.add_worker(w.worker_id)
        if self.pending_frees:
            keys, self.pending_frees = self.pending_frees, []
            self._send_free(w.worker_id, keys)
        pending, self.unready = self.unready, []
        for sub in pending:
            self._admit(sub)
        self.reattach.answer_waiting()
        self._kick()

    def _on_message(self, w: WorkerHandle, msg: PlanDone) -> None:
        if not w.plan_ids or msg.plan_id != w.plan_ids[0]:
            log.warning("unexpected plan_done %r from worker %d", msg.plan_id, w.worker_id)
            return
        w.plan_answered()
        self.pool.note_progress(w.worker_id)
        result = PlanResult.from_done(msg, self.keys.rid)
        self.overhead.on_done(w.worker_id, result)
        for rid, ev in result.evicted.items():
            if not ev.error:
                self.snapshot_bytes[rid] = ev.snapshot_bytes
        left = self.core.on_plan_done(w.worker_id, result, time.monotonic())
        self._journal_checkpoints(result.checkpointed)  # before the checkpoints they supersede are freed
        self._free_stale_checkpoints()  # before _let_go forgets the keys that name them
        for c in left:
            self._let_go(c)
        self._kick(back_to_back=w.worker_id)  # the worker starts its next slice while we reply
        self._take_tokens({rid: res.new_token_ids for rid, res in result.results.items() if res.new_token_ids})
        for c in left:
            self._answer(c.request)

    def _on_dead(self, w: WorkerHandle, why: str) -> None:
        if self.core is not None and w.worker_id in self.core.workers:
            self._take_back(w.worker_id, why)  # a respawn re-adds the worker when ready
        if w.unconfirmed_frees:  # it may have died before doing them; LMDB deletes are idempotent
            self._send_free(None, [k for _, keys in w.unconfirmed_frees for k in keys])
        if self.pool.is_exhausted:
            self.unavailable = (f"no LLM worker left ({why}; it crashed {self.pool.crashes.get(w.worker_id)} times in a row"
                                f" without finishing a plan, {self.pool.num_respawns} respawns in all): "
                                f"see {self.config.state_dir}/worker-{w.worker_id}.log")
            for rid in list(self.live):
                self.cancel_request(rid, self.unavailable, ErrorCode.UNAVAILABLE)  # nobody will run it
            self.unready.clear()
            self.reattach.answer_waiting(SyscallError(ErrorCode.UNAVAILABLE, self.unavailable))
        self._kick()

    def _take_back(self, wid: int, why: str) -> None:
        """Everything the dead worker held replays from its checkpoint or prompt, each under a new
        worker-side key (what the dead worker left under the old one is freed)."""
        loss = self.core.remove_worker(wid, time.monotonic())
        self._free_stale_checkpoints()
        for c in loss.completions:  # cancel-pending: already answered
            self._let_go(c)
        for rid, resume in loss.recovered.items():
            self.snapshot_bytes.pop(rid, None)
            self._send_free(None, [self.keys.key(rid)])
            self.keys.assign(rid)
            if rid in self.live:
                self.live.get(rid).cursor = resume
        self.overhead.forget(wid)
        log.warning("%s: %d request(s) replay from their checkpoints or prompts", why, len(loss.recovered))

    def _kick(self, back_to_back: int | None = None) -> None:
        """Give every ready worker its next plan, idle ones first, then the lookahead plans
        (back_to_back: the worker whose plan_done we just handled, for the overhead figures)."""
        if self.core is None:
            return
        for w in self.pool.ready():
            while self.pool.workers.get(w.worker_id) is w and self.core.accepts_plan(w.worker_id):  # a failed send kills w
                plan = self.core.next_plan(w.worker_id, time.monotonic())
                if plan is None:
                    break
                self.overhead.on_plan(w.worker_id, plan.plan_id, w.worker_id == back_to_back, bool(w.plan_ids))
                w.plan_sent(plan.plan_id)
                if not self.pool.send(w.worker_id, plan.to_wire(self.keys.key, self.keys.checkpoint)):
                    self.pool.fail(w, f"worker {w.worker_id}: plan {plan.plan_id} could not be sent; killed")  # requeued
        for wid, plan_id in self.core.revocations():  # continuations that newcomers now outrank
            self.overhead.totals.num_revokes += self.pool.send(wid, Revoke(plan_id).to_wire())  # lost: the plan runs

    def _let_go(self, c: Completion) -> None:
        """A request left the scheduler: free its worker state and checkpoint, record its row."""
        req = c.request
        self.snapshot_bytes.pop(req.rid, None)
        if c.checkpoint is not None:
            self._send_free(None, [self.keys.checkpoint(req.rid, c.checkpoint)])
        key = self.keys.release(req.rid)
        if c.needs_free:
            self._send_free(c.free_worker, [key])
        self.history.add(record_of(req), req.timeline)

    def _free_stale_checkpoints(self) -> None:
        keys = [self.keys.checkpoint(rid, n) for rid, n in self.core.take_stale_checkpoints()]
        if keys:
            self._send_free(None, keys)

    def _take_tokens(self, slices: dict[str, list[int]]) -> None:
        """A plan's new tokens: checked against what each request produced before (a replay),
        journaled, then streamed."""
        fresh: dict[str, list[int]] = {}
        for rid, token_ids in slices.items():
            sub = self.live.get(rid)
            if sub is None:
                continue
            fresh[rid], diverged = take_slice(sub, list(token_ids))
            if diverged:
                self.cancel_request(rid, diverged, ErrorCode.REPLAY_DIVERGED)
        self.journal.produced(fresh)
        for rid in fresh:
            if rid in self.live:
                self.flush(self.live.get(rid))

    def flush(self, sub: Submission) -> None:
        """Stream what the agent has not been sent yet."""
        owed = unstreamed(sub)
        if owed:
            sub.reply.stream({"request_id": sub.rid, "token_ids": owed, "text": self.codec.decode(owed)})

    def _journal_checkpoints(self, checkpointed: dict) -> None:
        for rid in checkpointed:
            req, sub = self.core.get(rid), self.live.get(rid)
            if req is not None and req.checkpoint is not None and sub is not None and sub.journaled:
                self.journal.checkpointed(rid, self.keys.first(rid), req.checkpoint, req.checkpoint_tokens)

    def _answer(self, req: SeqRequest) -> None:
        """Reply to a request that left the scheduler finished or failed (a cancelled one was
        answered when it was cancelled)."""
        sub = self.live.get(req.rid)
        if sub is None or req.state is SeqState.CANCELLED:
            return
        if req.state is SeqState.FAILED:
            err = req.error or {"code": "INTERNAL", "message": "failed"}
            self._fail(req.rid, err["code"], err["message"])
            return
        result, diverged = generate_result(sub, req, self.codec)
        if result is None:
            self._fail(req.rid, ErrorCode.REPLAY_DIVERGED, diverged)
            return
        self.live.pop(req.rid)
        self.reattach.park(sub, {"ok": True, "result": result})
        if sub.on_done is not None:
            sub.on_done(result)
        elif sub.reply is not None:
            self.flush(sub)
            sub.reply.ok(result)

    def _fail(self, rid: str, code: ErrorCode | str, message: str) -> None:
        sub = self.live.pop(rid)
        if sub is None:
            return
        log.info("request %s failed: %s: %s", rid, ErrorCode(code).value, message)
        if sub.resume is not None:  # recovered, never handed to the scheduler: its checkpoint is ours to free
            self._send_free(None, [checkpoint_key(*sub.resume[:2])])
        error = SyscallError(code, message)
        self.reattach.park(sub, {"ok": False, "error": error.to_wire()})
        if sub.on_done is not None:
            sub.on_done(error)
        elif sub.reply is not None:
            sub.reply.error(code, message)

    def _send_free(self, wid: int | None, keys: list[str]) -> None:
        """Free resident KV on `wid`, or (None, or `wid` is gone) have any ready worker delete
        LMDB entries; with no worker ready, the free waits for the next one that is."""
        if wid is None or wid not in self.pool.workers:
            wid = next((w.worker_id for w in self.pool.workers.values() if w.is_ready), None)
        if wid is not None and self.pool.send(wid, FreeRequest(keys).to_wire()):
            self.pool.workers[wid].free_sent(keys)
        elif keys:
            self.pending_frees += keys

    # ---- introspection and lifecycle ----
    def _sched_config(self, model: dict) -> SchedConfig:
        """From the flags and the first worker's ready message: its KV pool is the budget."""
        c, pool = self.config, model.get("kv_pool") or {}
        return SchedConfig(policy=c.scheduler, quantum=c.quantum, max_batch=c.max_batch,
                           kv_budget_bytes=pool.get("pool_bytes", c.kv_pool_bytes), kv_block_tokens=pool.get("block_size", 1),
                           preempt=c.preempt, **dict(c.sched_options))

    def check_integrity(self) -> None:
        if self.core is not None:
            self.core.check_integrity()
            waited = {r.rid for r in self.core.requests() if not r.is_cancel_requested}  # a cancelling one leaves with its plan
            assert waited <= set(self.live), "scheduler holds a request nobody waits for"

    def close(self) -> None:
        for rid in list(self.live):
            self._fail(rid, ErrorCode.UNAVAILABLE, "kernel shutting down")
        self.reattach.answer_waiting(SyscallError(ErrorCode.UNAVAILABLE, "kernel shutting down"))
        self.pool.close()
        if self.journal is not None:
            self.journal.close()
