"""The scheduler core: requests in, plans out, plan results back. Pure (stdlib only).

Owned by the kernel's single-threaded event loop; every method runs to completion and takes
the current time `now` from the caller, so tests drive it on a fake clock. A worker has at most
one outstanding plan, or two with lookahead (see next_plan), executed and answered in order;
requests in a plan are RUNNING until on_plan_done or remove_worker; a request is in one plan,
or in both of its worker's as a continuation. Applying plan results is in outcomes.py.
"""

from __future__ import annotations

import itertools

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes, max_footprint_bytes
from kernel.scheduler.config import SchedConfig
from kernel.scheduler.integrity import check_scheduler
from kernel.scheduler.lookahead import (
    best_other,
    continuation,
    continuation_holds,
    next_is_exact,
    successor_holds,
    surely_finishes,
)
from kernel.scheduler.outcomes import PlanOutcomes
from kernel.scheduler.plan import (
    CheckpointSpec,
    EvictSpec,
    LoadSpec,
    Plan,
)
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import (
    CancelEffect,
    DuplicateRequest,
    RequestTooLarge,
    SchedulerError,
    SeqRequest,
    SeqState,
    WorkerId,
    WorkerLoss,
)
from kernel.scheduler.selection import (
    choose_evictions,
    rank_candidates,
    reserved_steps,
    reserved_total,
    select_batch,
)


class Scheduler(PlanOutcomes):
    def __init__(self, config: SchedConfig, policy: Policy, kv_bytes_per_token: int):
        if kv_bytes_per_token < 1:
            raise ValueError("kv_bytes_per_token must be >= 1")
        self.config = config
        self.policy = policy
        self.kv_bytes_per_token = kv_bytes_per_token
        self._requests: dict[str, SeqRequest] = {}  # live (not terminal) requests
        self._prompts: dict[str, tuple[list[int], dict]] = {}  # while live: a dead worker's requests replay from it
        self._budgets: dict[WorkerId, KVBudget] = {}
        self._plans: dict[WorkerId, list[Plan]] = {}  # outstanding per worker, in execution order
        self._deferred_preemptions: dict[int, list[str]] = {}  # lookahead plan id -> rids it preempts
        self._previous_batch: dict[WorkerId, list[str]] = {}
        self._plan_ids = itertools.count(1)
        self._stale: list[tuple[str, int]] = []  # checkpoints (rid, number) to delete from LMDB

    # -- queries ---------------------------------------------------------------------------
    def get(self, rid: str) -> SeqRequest | None:
        return self._requests.get(rid)

    def requests(self) -> list[SeqRequest]:
        return list(self._requests.values())

    @property
    def workers(self) -> list[WorkerId]:
        return list(self._budgets)

    def worker_of(self, req: SeqRequest) -> WorkerId | None:
        """The worker holding its KV, else the one whose outstanding plan it is in (a swap out or in)."""
        if req.residency is not None or req.plan_id is None:
            return req.residency
        return next((wid for wid, plans in self._plans.items() for p in plans if p.plan_id == req.plan_id), None)

    def resident_bytes(self, wid: WorkerId) -> int:
        return self._budgets[wid].used_bytes

    def take_stale_checkpoints(self) -> list[tuple[str, int]]:
        """Checkpoints (rid, number) no request needs any more (superseded, never confirmed, or
        of a request that left): the caller deletes them from LMDB. Completions carry their own."""
        stale, self._stale = self._stale, []
        return stale

    # -- workers ---------------------------------------------------------------------------
    def add_worker(self, wid: WorkerId) -> None:
        if wid in self._budgets:
            raise SchedulerError(f"worker {wid} already added")
        self._budgets[wid] = KVBudget(self.config.kv_budget_bytes)
        self._previous_batch[wid] = []

    def remove_worker(self, wid: WorkerId, now: float) -> WorkerLoss:
        """A dead worker: what was resident there or in its outstanding plans loses its state. A
        cancel-pending request becomes CANCELLED (needs_free: any live worker deletes its LMDB
        entries); every other one replays from its checkpoint or prompt (_recover, deterministic).
        Returns both (the recovered ones' old LMDB entries, if any, are stale)."""
        self._worker(wid)
        plans = self._plans.pop(wid, [])
        in_plan = {rid for plan in plans for rid in plan.rids()}
        self._stale += [(c.rid, c.key) for plan in plans for c in plan.checkpoint]  # maybe written, never confirmed
        for plan in plans:
            self._deferred_preemptions.pop(plan.plan_id, None)
        lost = [r for r in self._requests.values() if r.residency == wid or r.rid in in_plan]
        del self._budgets[wid], self._previous_batch[wid]
        loss = WorkerLoss()
        for req in lost:
            req.residency = None
            if req.is_cancel_requested:
                loss.completions.append(self._retire(req, SeqState.CANCELLED, now, needs_free=True))
            else:
                self._recover(req, now)
                loss.recovered[req.rid] = req.num_generated
        return loss

    def _recover(self, req: SeqRequest, now: float) -> None:
        """Back to its last durable state: READY from its checkpoint, else WAITING from its prompt.
        What the dead worker may have left under its key is not its state (the replay gets a new key)."""
        req.plan_id, req.kv_bytes = None, 0
        req.num_recoveries += 1
        if req.checkpoint is not None:
            req.state, req.has_snapshot, req.is_snapshot_kv = SeqState.READY, True, True
            req.num_generated, req.is_restoring_checkpoint = req.checkpoint_tokens, True
        else:
            req.state, req.has_snapshot, req.is_snapshot_kv = SeqState.WAITING, False, False
            req.num_generated, req.is_restoring_checkpoint = 0, False
        req.timeline.record_recovery(now, req.num_generated)

    # -- requests --------------------------------------------------------------------------
    def submit(self, req: SeqRequest, prompt_ids: list[int], params: dict, now: float,
               checkpoint: tuple[int, int] | None = None) -> None:
        """Admit a new request (WAITING). Raises RequestTooLarge if it could never fit one
        worker's KV budget, DuplicateRequest for a live rid, SchedulerError for bad fields.
        `checkpoint` (number, tokens at it): a request an earlier kernel ran, recovered from its
        journal; it resumes from that checkpoint (READY) as if its worker had died."""
        if req.rid in self._requests:
            raise DuplicateRequest(f"request {req.rid!r} already exists")
        if req.prompt_len != len(prompt_ids) or req.prompt_len < 1:
            raise SchedulerError(f"prompt_len {req.prompt_len} != {len(prompt_ids)} prompt ids")
        if req.max_new_tokens < 1 or req.num_beams < 1:
            raise SchedulerError("max_new_tokens and num_beams must be >= 1")
        req.kv_block_tokens = self.config.kv_block_tokens
        need = max_footprint_bytes(req, self.kv_bytes_per_token)
        if self.config.kv_budget_bytes is not None and need > self.config.kv_budget_bytes:
            raise RequestTooLarge(
                f"request {req.rid!r} needs {need} KV bytes at full length "
                f"(prompt {req.prompt_len} + {req.max_new_tokens} new) x {req.num_beams} beams, "
                f"more than a worker's budget of {self.config.kv_budget_bytes}"
            )
        req.state = SeqState.WAITING
        self._requests[req.rid] = req
        self._prompts[req.rid] = (list(prompt_ids), params)
        self.policy.on_submit(req, now)
        if checkpoint is not None:
            req.checkpoint, req.checkpoint_tokens = checkpoint
            req.num_checkpoints = req.checkpoint
            self._recover(req, now)

    def cancel(self, rid: str, now: float) -> CancelEffect:
        """Cancel a live request at once, or (when it is in an outstanding plan) when that plan
        returns; a cancel racing with the plan that finishes the request yields FINISHED."""
        req = self._requests.get(rid)
        if req is None:
            return CancelEffect(is_found=False)
        if req.state is SeqState.RUNNING:
            req.is_cancel_requested = True
            return CancelEffect(is_found=True, is_deferred=True)
        needs_free = req.residency is not None or req.has_snapshot
        done = self._retire(
            req, SeqState.CANCELLED, now, needs_free=needs_free, free_worker=req.residency
        )
        return CancelEffect(is_found=True, completion=done)

    # -- plans -----------------------------------------------------------------------------
    def accepts_plan(self, wid: WorkerId) -> bool:
        """Whether `wid` may be given a plan now: it has none outstanding, or one (not being
        revoked) and may look ahead."""
        plans = self._plans.get(wid, ())
        return not plans or (len(plans) == 1 and not plans[0].is_revoking and self.config.lookahead
                             and self.policy.lookahead is not None)

    def revocations(self) -> list[tuple[WorkerId, int]]:
        """Continuations and successors, not yet started, that are no longer the policy's
        choice (a request became runnable that would join the batch or take a member's place):
        each is marked revoking, and the caller sends its worker a revoke. The worker answers it
        revoked (dropped unstarted) or, if it had started it, done; until then its worker gets
        no further plan."""
        found = []
        for wid, plans in self._plans.items():
            if len(plans) < 2 or not plans[1].is_revocable or plans[1].is_revoking:
                continue
            later = plans[1]
            batch = [self._requests[rid] for rid in later.decode if rid in self._requests]
            best = best_other(self._requests.values(), wid, self.policy)
            if later.is_successor:
                holds = successor_holds(batch, best, self.policy, self.config.max_batch)
            else:
                holds = continuation_holds(batch, plans[0].steps, best, self.policy, self.config.max_batch)
            if not holds:
                later.is_revoking = True
                found.append((wid, later.plan_id))
        return found

    def next_plan(self, wid: WorkerId, now: float) -> Plan | None:
        """The next plan for `wid`, or None when it has nothing to run.

        With a plan outstanding (accepts_plan) this is a lookahead: the plan the worker runs right
        after the one in hand, sent now so that the worker does not wait for the kernel between
        them, made only where it is the policy's choice whatever the running plan does
        (lookahead.py): rr's next plan (the running requests are not candidates), a
        continuation (the running batch again, RUNNING in both plans) or, after a batch that
        surely finishes, its successor (see revocations)."""
        budget = self._worker(wid)
        outstanding = self._plans.setdefault(wid, [])
        if not self.accepts_plan(wid):
            raise SchedulerError(f"worker {wid} still has plan {outstanding[-1].plan_id} outstanding")
        is_lookahead = bool(outstanding)
        is_successor = False
        if is_lookahead and self.policy.lookahead == "continue":
            running = outstanding[0]
            live = [self._requests[rid] for rid in running.decode if rid in self._requests]
            if not surely_finishes(live, running.steps):
                return self._continuation(running, budget, now)
            is_successor = True
        self.policy.on_plan(now)
        previous = self._previous_batch[wid]
        ranked = rank_candidates(self._requests.values(), wid, self.policy, set(previous))
        batch, steps = select_batch(ranked, self.policy, budget, self.config.max_batch, self.kv_bytes_per_token)
        if not batch:
            return None
        reservations = {r.rid: kv_footprint_bytes(r, reserved_steps(r, steps, self.policy), self.kv_bytes_per_token)
                        for r in batch}
        victims = choose_evictions(ranked, wid, reservations, budget)
        if is_successor:
            best = ranked[len(batch)] if len(ranked) > len(batch) else None  # batch: a prefix of ranked
            if victims or not budget.fits(reserved_total(reservations, budget)) or not successor_holds(
                    batch, best, self.policy, self.config.max_batch):
                return None
        elif is_lookahead and not next_is_exact(batch, self.config.max_batch, len(victims), reservations, budget):
            return None
        plan = Plan(next(self._plan_ids), wid, steps, now, is_successor=is_successor)
        for victim in victims:
            self._preempt(victim, plan)
        for req in batch:
            self._dispatch(req, plan, reservations[req.rid], now)
            self._maybe_checkpoint(req, plan)
        left_out = [rid for rid in previous if rid not in plan.decode]
        if is_lookahead:  # the previous batch is still running: preempted when it returns
            self._deferred_preemptions[plan.plan_id] = left_out
        else:
            self._record_preemptions(left_out, now)
        self._previous_batch[wid] = list(plan.decode)
        outstanding.append(plan)
        return plan

    def _continuation(self, running: Plan, budget: KVBudget, now: float) -> Plan | None:
        """Lookahead "continue" (lookahead.continuation): the running batch again, for another slice."""
        batch = [self._requests[rid] for rid in running.decode if rid in self._requests]
        best = best_other(self._requests.values(), running.worker_id, self.policy)
        found = continuation(batch, running.steps, best, self.policy, budget, self.config.max_batch,
                             self.kv_bytes_per_token)
        if found is None:
            return None
        plan = Plan(next(self._plan_ids), running.worker_id, found[0], now, is_continuation=True)
        checkpointed = {c.rid for c in running.checkpoint}
        for req in batch:  # RUNNING in `running` and now in `plan` too: its plan_id is the later one
            budget.set(req.rid, found[1][req.rid])
            req.plan_id = plan.plan_id
            plan.decode.append(req.rid)
            self._maybe_checkpoint(req, plan, ahead=running.steps, is_ahead_checkpointed=req.rid in checkpointed)
        self._plans[plan.worker_id].append(plan)
        return plan

    def check_integrity(self) -> None:
        """Raise AssertionError naming the first broken invariant (see integrity.py)."""
        check_scheduler(self._requests, self._prompts, self._plans, self._budgets, self.kv_bytes_per_token)

    # -- state transitions (the only places request fields change) ------------------------
    def _preempt(self, req: SeqRequest, plan: Plan) -> None:
        """The one place a resident request leaves its worker's memory: its KV leaves the
        ledger, it stops being resident, and it rides in `plan` as an eviction (RUNNING) until
        plan_done confirms the snapshot (_finish_eviction makes it READY with a snapshot)."""
        self._budgets[plan.worker_id].release(req.rid)
        req.residency = None
        req.state, req.plan_id = SeqState.RUNNING, plan.plan_id
        plan.evict.append(EvictSpec(req.rid, self.config.evict_mode))

    def _dispatch(self, req: SeqRequest, plan: Plan, reserve_bytes: int, now: float) -> None:
        """Put `req` in `plan`'s batch: load it unless resident there, reserve its KV."""
        if req.residency != plan.worker_id:
            plan.load.append(self._load_spec(req))
            req.residency = plan.worker_id
        self._budgets[plan.worker_id].set(req.rid, reserve_bytes)
        req.state, req.plan_id = SeqState.RUNNING, plan.plan_id
        plan.decode.append(req.rid)
        if req.timeline.first_scheduled_s is None:
            req.timeline.first_scheduled_s = now
            plan.first_scheduled.append(req.rid)

    def _load_spec(self, req: SeqRequest) -> LoadSpec:
        if req.state is SeqState.WAITING:
            prompt_ids, params = self._prompts[req.rid]
            return LoadSpec(req.rid, "prefill", prompt_ids, params)
        if req.is_restoring_checkpoint:
            return LoadSpec(req.rid, "restore", source=req.checkpoint)
        return LoadSpec(req.rid, "restore")

    def _maybe_checkpoint(self, req: SeqRequest, plan: Plan, ahead: int = 0, is_ahead_checkpointed: bool = False) -> None:
        """A checkpoint at the end of this slice once checkpoint_every steps will have passed since the last
        durable state, unless it surely finishes. `ahead`: steps of a running plan this one continues."""
        every = self.config.checkpoint_every
        before = req.num_generated + ahead
        after = before + plan.steps
        durable = before if is_ahead_checkpointed else req.checkpoint_tokens
        if every and after - durable >= every and ahead + plan.steps < req.num_remaining:
            req.num_checkpoints += 1
            plan.checkpoint.append(CheckpointSpec(req.rid, req.num_checkpoints))

    def _worker(self, wid: WorkerId) -> KVBudget:
        budget = self._budgets.get(wid)
        if budget is None:
            raise SchedulerError(f"unknown worker {wid}")
        return budget
