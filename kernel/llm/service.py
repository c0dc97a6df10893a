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
from kernel.llm.journal import Journal, Journaled, ParkedReply
from kernel.llm.keys import WorkerKeys, checkpoint_key
from kernel.llm.leftovers import reconcile_snapshots
from kernel.llm.metrics import History, active_row, record_of
from kernel.llm.overhead import OverheadMeter
from kernel.llm.prompt import PromptCodec, Window
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
from syscalls.worker_messages import FreeRequest, PlanDone

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
        self.parked: dict[str, ParkedReply] = {}  # replies kept for llm.attach (grace period)
        self.unready_attach: list[tuple[CallContext, dict]] = []  # llm.attach calls waiting for the model

    def start(self) -> None:
        """Recover the journal of an earlier kernel on this state dir, keep the snapshots its
        requests resume from (delete the rest), then start the workers."""
        self.journal = Journal(self.config.state_dir / "journal.lmdb")
        found, self.parked = self.journal.recover()
        keep = [checkpoint_key(j.checkpoint[0], j.checkpoint[1]) for j in found if j.checkpoint]
        left = reconcile_snapshots(self.config.state_dir / "snapshots.lmdb", keep)  # before any worker opens it
        if left:
            log.warning("removed %d snapshot entries left in %s by an earlier kernel", left, self.config.state_dir)
        for j in found:
            self._recover(j)
        if found:
            log.warning("recovered %d request(s) from the journal (%d from checkpoints); their agents have %.0f s to "
                        "re-attach", len(found), len(keep), self.config.reattach_grace_s)
            self.kernel.loop.call_later(self.config.reattach_grace_s, self._expire_detached)
        self.kernel.loop.call_every(max(1.0, self.config.reattach_grace_s / 4), self._expire_replies)
        self.pool.start()

    def _recover(self, j: Journaled) -> None:
        """A request of an earlier kernel: it runs again (from its checkpoint, or its prompt)
        while its agent reconnects; its reply waits for llm.attach."""
        sub = Submission(j.rid, j.agent, j.args, time.monotonic(), None, journaled=True, resume=j.checkpoint)
        sub.delivered = j.delivered
        self.live.add(sub)
        self.unready.append(sub)

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
        self.parked.pop(rid, None)  # a reply of an earlier request with this id is superseded
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
            if f"{agent}/{n}" not in self.live and f"{agent}/{n}" not in self.parked:
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
        self._cancel(rid, "cancelled by llm.cancel")
        return True

    def _cancel(self, rid: str, why: str, code: ErrorCode = ErrorCode.CANCELLED) -> None:
        """Reply `code` now; the scheduler lets go of the request now or when its plan returns."""
        if self.core is not None and self.core.get(rid) is not None:
            effect = self.core.cancel(rid, time.monotonic())
            if effect.completion is not None:
                self._let_go(effect.completion)
        self._fail(rid, code, why)
        summary = self.live.get(f"{rid}#summary")
        if summary is not None:
            self._cancel(summary.rid, why)

    def snapshots(self, agent: str) -> list[dict]:
        """The agent's requests now swapped out to LMDB (the kernel's index; bytes stay in LMDB)."""
        reqs = self.core.requests() if self.core is not None else []
        return [{"request_id": r.rid, "bytes": self.snapshot_bytes.get(r.rid, 0), "has_kv": r.is_snapshot_kv}
                for r in reqs if r.agent == agent and r.has_snapshot]

    def on_agent_exit(self, agent: str) -> int:
        rids = [s.rid for s in self.live.of_agent(agent) if s.reply is not None]
        for rid in rids:
            self._cancel(rid, f"agent {agent} exited")
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
        self._answer_attaches()
        self._kick()

    def _on_message(self, w: WorkerHandle, msg: PlanDone) -> None:
        if msg.plan_id != w.plan_id:
            log.warning("unexpected plan_done %r from worker %d", msg.plan_id, w.worker_id)
            return
        w.plan_id = None
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
        if self.pool.is_exhausted:
            self.unavailable = (f"no LLM worker left ({why}; it crashed {self.pool.crashes.get(w.worker_id)} times in a row"
                                f" without finishing a plan, {self.pool.num_respawns} respawns in all): "
                                f"see {self.config.state_dir}/worker-{w.worker_id}.log")
            for rid in list(self.live):
                self._cancel(rid, self.unavailable, ErrorCode.UNAVAILABLE)  # nobody will run it
            self.unready.clear()
            self._answer_attaches(SyscallError(ErrorCode.UNAVAILABLE, self.unavailable))
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
        """Give every idle worker its next plan (back_to_back: the worker whose plan_done we
        just handled, for the overhead figures)."""
        if self.core is None:
            return
        for w in self.pool.idle():
            if not w.is_idle or self.pool.workers.get(w.worker_id) is not w:  # changed by a failed send below
                continue
            plan = self.core.next_plan(w.worker_id, time.monotonic())
            if plan is None:
                continue
            self.overhead.on_plan(w.worker_id, w.worker_id == back_to_back)
            w.plan_id = plan.plan_id
            if not self.pool.send(w.worker_id, plan.to_wire(self.keys.key, self.keys.checkpoint)):
                self.pool.fail(w, f"worker {w.worker_id}: plan {plan.plan_id} could not be sent; killed")  # requeued

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
                self._cancel(rid, diverged, ErrorCode.REPLAY_DIVERGED)
        self.journal.produced(fresh)
        for rid in fresh:
            if rid in self.live:
                self._flush(self.live.get(rid))

    def _flush(self, sub: Submission) -> None:
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
        self._park(sub, {"ok": True, "result": result})
        if sub.on_done is not None:
            sub.on_done(result)
        elif sub.reply is not None:
            self._flush(sub)
            sub.reply.ok(result)

    def _fail(self, rid: str, code: ErrorCode | str, message: str) -> None:
        sub = self.live.pop(rid)
        if sub is None:
            return
        log.info("request %s failed: %s: %s", rid, ErrorCode(code).value, message)
        if sub.resume is not None:  # recovered, never handed to the scheduler: its checkpoint is ours to free
            self._send_free(None, [checkpoint_key(*sub.resume[:2])])
        self._park(sub, {"ok": False, "error": SyscallError(code, message).to_wire()})
        if sub.on_done is not None:
            sub.on_done(SyscallError(code, message))
        elif sub.reply is not None:
            sub.reply.error(code, message)

    def _park(self, sub: Submission, reply: dict) -> None:
        """An agent's request left: its reply stays fetchable by llm.attach for the grace period
        (its agent may be away, or the reply may die with this kernel before it is sent)."""
        if sub.journaled:
            parked = ParkedReply(reply, bool(sub.args["stream"]), time.time())
            self.parked[sub.rid] = parked
            self.journal.leave(sub.rid, parked)

    # ---- re-attaching after a kernel restart ----
    def attach(self, ctx: CallContext, args: dict) -> object:
        """llm.attach: the caller's request `request_id` replies here (and streams what the
        caller has not received, from `received` tokens on)."""
        if self.codec is None and self.config.num_workers > 0 and not self.unavailable:
            self.unready_attach.append((ctx, args))  # the catch-up stream needs the tokenizer
            return DEFERRED
        rid = full_request_id(ctx.caller, args["request_id"])
        sub, parked = self.live.get(rid), self.parked.get(rid)
        if sub is not None and sub.journaled:
            sub.reply, sub.streamed = ctx.defer(), args["received"]
            self._flush(sub)
            return DEFERRED
        if parked is None:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no request '{rid}' in flight or finished in the last "
                               f"{self.config.reattach_grace_s:.0f} s")
        reply = ctx.defer()
        if parked.reply["ok"] and parked.stream:
            owed = parked.reply["result"]["token_ids"][args["received"]:]
            if owed and self.codec is not None:
                reply.stream({"request_id": rid, "token_ids": owed, "text": self.codec.decode(owed)})
        if parked.reply["ok"]:
            reply.ok(parked.reply["result"])
        else:
            reply.error(parked.reply["error"]["code"], parked.reply["error"]["message"])
        return DEFERRED

    def _answer_attaches(self, error: SyscallError | None = None) -> None:
        """The llm.attach calls that waited for the model: served now, or failed with `error`."""
        attaching, self.unready_attach = self.unready_attach, []
        for ctx, args in attaching:
            try:
                if error is not None:
                    raise error
                self.attach(ctx, args)
            except SyscallError as err:
                ctx.defer().error(err.code, err.message)

    def _expire_detached(self) -> None:
        for sub in [s for s in self.live.values() if s.is_detached]:
            self._cancel(sub.rid, f"agent {sub.agent} did not re-attach within {self.config.reattach_grace_s:.0f} s "
                                  "of the kernel's restart")

    def _expire_replies(self) -> None:
        for rid in self.journal.expire(self.config.reattach_grace_s):
            self.parked.pop(rid, None)

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
    def stats(self, agent: str | None, with_rows: bool = True) -> dict:
        workers = [w.to_wire() for w in self.pool.workers.values()]
        base = {"policy": self.config.scheduler, "config": self.sched_config(), "workers": workers,
                "overhead": self.overhead.to_wire() if self.core else None,
                "journal": self.journal.counts() if self.journal is not None else None}
        reqs = self.core.requests() if self.core else []
        active = []
        if with_rows and self.core is not None:
            ranked = sorted(reqs, key=self.core.policy.rank_key)
            active = [active_row(r, rank, self.core.worker_of(r)) for rank, r in enumerate(ranked) if agent in (None, r.agent)]
        wire = self.history.to_wire(agent, active, with_rows)
        wire["totals"]["active"] = len(reqs)
        return {**base, "kv": self.kv_use(), **wire}

    def kv_use(self) -> list[dict]:
        """KV bytes reserved on each worker against its budget (the scheduler's ledger)."""
        if self.core is None:
            return []
        budget = self.core.config.kv_budget_bytes
        return [{"worker_id": w, "used_bytes": self.core.resident_bytes(w), "budget_bytes": budget} for w in self.core.workers]

    def _sched_config(self, model: dict) -> SchedConfig:
        """From the flags and the first worker's ready message: its KV pool is the budget."""
        c, pool = self.config, model.get("kv_pool") or {}
        return SchedConfig(policy=c.scheduler, quantum=c.quantum, max_batch=c.max_batch,
                           kv_budget_bytes=pool.get("pool_bytes", c.kv_pool_bytes), kv_block_tokens=pool.get("block_size", 1),
                           preempt=c.preempt, **dict(c.sched_options))

    def sched_config(self) -> dict:
        c = self.config
        sched = self.core.config if self.core is not None else None
        return {"quantum": c.quantum, "max_batch": c.max_batch, "preempt": c.preempt, "num_workers": c.num_workers,
                "model": c.model, "engine": c.engine, "kv_pool_bytes": c.kv_pool_bytes,
                "kv_budget_bytes": sched.kv_budget_bytes if sched else None,
                "kv_block_tokens": sched.kv_block_tokens if sched else None}

    def check_integrity(self) -> None:
        if self.core is not None:
            self.core.check_integrity()
            waited = {r.rid for r in self.core.requests() if not r.is_cancel_requested}  # a cancelling one leaves with its plan
            assert waited <= set(self.live), "scheduler holds a request nobody waits for"

    def close(self) -> None:
        for rid in list(self.live):
            self._fail(rid, ErrorCode.UNAVAILABLE, "kernel shutting down")
        self._answer_attaches(SyscallError(ErrorCode.UNAVAILABLE, "kernel shutting down"))
        self.pool.close()
        if self.journal is not None:
            self.journal.close()
