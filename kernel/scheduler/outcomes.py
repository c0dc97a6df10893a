"""What a plan's result does to the scheduler: the second half of Scheduler (core.py), split off
by responsibility. Pure (stdlib only); runs on the kernel's event loop like the rest of the core.
Every request field changed here is changed by one of these transitions."""

from __future__ import annotations

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes
from kernel.scheduler.plan import (
    CheckpointSpec,
    EvictResult,
    EvictSpec,
    LoadResult,
    LoadSpec,
    Plan,
    PlanResult,
    SeqResult,
)
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import (
    Completion,
    PlanMismatch,
    SeqRequest,
    SeqState,
    WorkerId,
)
from kernel.scheduler.selection import reserved_steps


class PlanOutcomes:
    """Mixin of Scheduler: applying plan_done and retiring requests."""

    policy: Policy
    kv_bytes_per_token: int
    _requests: dict[str, SeqRequest]
    _prompts: dict[str, tuple[list[int], dict]]
    _budgets: dict[WorkerId, KVBudget]
    _plans: dict[WorkerId, list[Plan]]
    _deferred_preemptions: dict[int, list[str]]
    _previous_batch: dict[WorkerId, list[str]]
    _stale: list[tuple[str, int]]

    def _record_preemptions(self, rids: list[str], now: float) -> None:
        """Live requests of the previous batch on a worker that its next plan does not decode."""
        for rid in rids:
            req = self._requests.get(rid)
            if req is not None:
                req.timeline.preemption_s.append(now)

    def on_plan_done(self, wid: WorkerId, result: PlanResult, now: float) -> list[Completion]:
        """Apply a plan_done: snapshots, loads, tokens, finishes and errors. Returns the requests
        that left the scheduler. A missing per-request result fails that request (INTERNAL)."""
        outstanding = self._plans.get(wid)
        plan = outstanding[0] if outstanding else None
        if plan is None or plan.plan_id != result.plan_id:
            due = plan.plan_id if plan else None
            raise PlanMismatch(f"worker {wid}: plan_done {result.plan_id} answers no outstanding plan (due: {due})")
        if result.is_revoked and not plan.is_revoking:
            raise PlanMismatch(f"worker {wid} revoked plan {plan.plan_id}, which was not revoked")
        outstanding.pop(0)
        if result.is_revoked:
            return self._finish_revoked(plan, now)  # else a revoke that came too late: the plan ran
        done = [self._finish_eviction(s, result.evicted.get(s.rid), wid, now) for s in plan.evict]
        done += [self._finish_load(s, result.loaded.get(s.rid), wid, now) for s in plan.load]
        done += [self._finish_slice(rid, result, wid, now) for rid in plan.decode]
        for spec in plan.checkpoint:
            self._finish_checkpoint(spec, result.checkpointed.get(spec.rid))
        done += [self._finish_cancel(rid, now) for rid in plan.rids()]
        if outstanding:  # the lookahead plan now running on wid preempts what it did not take
            self._record_preemptions(self._deferred_preemptions.pop(outstanding[0].plan_id, []), now)
        return [c for c in done if c is not None]

    def _finish_checkpoint(self, spec: CheckpointSpec, res: EvictResult | None) -> None:
        """A confirmed checkpoint supersedes the older one; a failed one (or a gone request's) is deleted."""
        req = self._requests.get(spec.rid)
        if req is None or res is None or res.error:
            self._stale.append((spec.rid, spec.key))
            return
        if req.checkpoint is not None:
            self._stale.append((req.rid, req.checkpoint))
        req.checkpoint, req.checkpoint_tokens = spec.key, req.num_generated

    def _finish_eviction(self, spec: EvictSpec, res: EvictResult | None, wid: WorkerId, now: float) -> Completion | None:
        req = self._requests[spec.rid]
        if res is None or res.error:
            return self._fail(req, res, wid, now)
        req.has_snapshot, req.is_snapshot_kv, req.kv_bytes = True, spec.mode == "swap", 0
        req.timeline.record_swap(wid, "out", now, res.t_s)
        req.state, req.plan_id = SeqState.READY, None
        return None

    def _finish_load(self, spec: LoadSpec, res: LoadResult | None, wid: WorkerId, now: float) -> Completion | None:
        req = self._requests[spec.rid]
        if res is None or res.error:
            return self._fail(req, res, wid, now)
        if spec.mode == "restore":
            req.has_snapshot, req.is_restoring_checkpoint = False, False
            req.timeline.record_swap(wid, "in", now, res.t_s)
        req.kv_bytes = res.kv_bytes
        return None

    def _finish_slice(self, rid: str, result: PlanResult, wid: WorkerId, now: float) -> Completion | None:
        req = self._requests.get(rid)
        if req is None:  # its load failed, or it stopped early in the plan this one continued
            return None
        res: SeqResult | None = result.results.get(rid)
        if res is None or res.error:
            return self._fail(req, res, wid, now)
        req.num_generated += res.num_steps
        req.kv_bytes = res.kv_bytes
        req.timeline.record_slice(wid, result.t_start, result.t_end, res.num_steps)
        self.policy.on_slice(req, res.num_steps, now)
        if res.is_finished or req.num_remaining == 0:  # a worker that overran is told to free
            req.finish_reason = res.finish_reason or "length"
            req.output_ids = res.output_ids
            req.output_logprobs = res.output_logprobs
            return self._retire(req, SeqState.FINISHED, result.t_end, needs_free=not res.is_finished, free_worker=wid)
        later = next((p for p in self._plans.get(wid, ()) if p.plan_id == req.plan_id), None)
        if later is not None:  # it runs on in a continuation (see _continuation): still RUNNING
            steps = reserved_steps(req, later.steps, self.policy)
            self._budgets[wid].set(rid, kv_footprint_bytes(req, steps, self.kv_bytes_per_token))
            return None
        self._budgets[wid].set(rid, kv_footprint_bytes(req, 0, self.kv_bytes_per_token))
        req.state, req.plan_id = SeqState.READY, None
        return None

    def _finish_cancel(self, rid: str, now: float) -> Completion | None:
        req = self._requests.get(rid)
        if req is None or not req.is_cancel_requested or req.plan_id is not None:  # not while a continuation holds it
            return None
        needs_free = req.residency is not None or req.has_snapshot
        return self._retire(
            req, SeqState.CANCELLED, now, needs_free=needs_free, free_worker=req.residency
        )

    def _fail(self, req: SeqRequest, res: object, wid: WorkerId, now: float) -> Completion:
        error = getattr(res, "error", None) or {
            "code": "INTERNAL",
            "message": f"worker {wid} sent no result for {req.rid}",
        }
        return self._retire(req, SeqState.FAILED, now, needs_free=True, free_worker=wid, error=error)

    def _retire(self, req: SeqRequest, state: SeqState, now: float, *, needs_free: bool,
                free_worker: WorkerId | None = None, error: dict | None = None) -> Completion:
        """Remove `req` from every structure; it leaves as a Completion."""
        budget = self._budgets.get(req.residency) if req.residency is not None else None
        if budget is not None:
            budget.release(req.rid)
        del self._requests[req.rid]
        self._prompts.pop(req.rid, None)
        self.policy.on_retire(req)
        req.state, req.residency, req.has_snapshot, req.plan_id = state, None, False, None
        req.error = error
        req.timeline.finish_s = now
        return Completion(req, needs_free=needs_free, free_worker=free_worker, checkpoint=req.checkpoint)


    def _finish_revoked(self, plan: Plan, now: float) -> list[Completion]:
        """A lookahead plan the worker dropped unstarted. A continuation's members, back from
        the plan before it, are READY and resident as after any slice; a successor's are where
        they were before it (a load never happened: WAITING or snapshotted, not resident), and
        the worker's previous batch is the one that finished. Its checkpoints were never written."""
        loads = {spec.rid: spec for spec in plan.load}
        budget = self._budgets[plan.worker_id]
        for rid in plan.decode:
            req = self._requests.get(rid)
            if req is None or req.plan_id != plan.plan_id:
                continue
            if rid in loads:
                budget.release(rid)
                req.residency = None
                req.state = SeqState.WAITING if loads[rid].mode == "prefill" else SeqState.READY
            else:
                budget.set(rid, kv_footprint_bytes(req, 0, self.kv_bytes_per_token))
                req.state = SeqState.READY
            req.plan_id = None
            if rid in plan.first_scheduled:
                req.timeline.first_scheduled_s = None
        if plan.is_successor:
            self._previous_batch[plan.worker_id] = []
        self._stale += [(c.rid, c.key) for c in plan.checkpoint]
        done = [self._finish_cancel(rid, now) for rid in plan.decode]
        return [c for c in done if c is not None]
