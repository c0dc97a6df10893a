"""Drives a Scheduler against SimCluster the way the kernel's event loop would, and checks
the outcome of every request plus the liveness bounds stated in the policies' docstrings."""

from __future__ import annotations

import itertools

from kernel.scheduler import (
    Completion,
    PlanResult,
    RequestTooLarge,
    SchedConfig,
    SeqRequest,
    SeqState,
    make_scheduler,
)
from kernel.scheduler.plan import checkpoint_key
from tests.scheduler.sim import FakeClock, SimCluster

BPT = 2
STEP_S = 0.001


class Harness:
    def __init__(self, config: SchedConfig, num_workers: int):
        self.config = config
        self.clock = FakeClock()
        self.sched = make_scheduler(config, BPT)
        self.sim = SimCluster(BPT, STEP_S, config.kv_budget_bytes, self.clock)
        self.worker_ids = itertools.count()
        self.inflight: dict[int, list[dict]] = {}  # worker -> plans sent, in execution order (lookahead: 2)
        self.expected: dict[str, int] = {}  # rid -> tokens it must finish with
        self.completed: dict[str, Completion] = {}
        self.cancelled: set[str] = set()
        self.recovered: set[str] = set()  # went back to WAITING when their worker died
        self.num_rids = 0
        self.service: dict[str, int] = {}  # rid -> tokens decoded for it (steps * beams), from plan results
        self.program_service: dict[tuple, int] = {}  # (agent, program_id) -> the same summed over its calls
        self.bounds = BoundTracker(self)
        self.revoking: set[int] = set()  # plan ids the scheduler revoked, not yet answered
        self.num_revoked = 0  # plans answered revoked
        for _ in range(num_workers):
            self.add_worker()

    # -- kernel-like actions ---------------------------------------------------------------
    def add_worker(self) -> int:
        wid = next(self.worker_ids)
        self.sched.add_worker(wid)
        self.sim.add_worker(wid)
        return wid

    def submit(
        self,
        agent: str,
        prompt_len: int,
        max_new: int,
        beams: int,
        priority: int,
        stop_at: int | None,
        expected_tokens: int | None = None,
        program_id: str | None = None,
    ) -> str | None:
        rid = f"{agent}/{self.num_rids}"
        self.num_rids += 1
        req = SeqRequest(rid, agent, self.clock.now, prompt_len, max_new, beams, priority, expected_tokens, program_id)
        params = {"max_new_tokens": max_new, "num_beams": beams}
        need = (prompt_len + max_new) * beams * BPT
        try:
            self.sched.submit(req, list(range(prompt_len)), params, self.clock.now)
        except RequestTooLarge:
            assert self.config.kv_budget_bytes is not None and need > self.config.kv_budget_bytes
            return None
        assert self.config.kv_budget_bytes is None or need <= self.config.kv_budget_bytes
        if stop_at is not None:
            self.sim.stop_at[rid] = stop_at
        self.expected[rid] = max_new if stop_at is None else min(stop_at, max_new)
        self.service[rid] = 0
        self.program_service.setdefault(req.program, 0)
        self.bounds.on_requeue(rid)
        self.revoke()
        return rid

    def dispatch(self, wid: int) -> bool:
        queued = self.inflight.get(wid, [])
        if wid not in self.sim.workers or not self.sched.accepts_plan(wid):
            assert queued or wid not in self.sim.workers, f"worker {wid} refused a plan while idle"
            return False
        is_lookahead = bool(queued)
        kind = self.sched.policy.lookahead
        assert not is_lookahead or (self.config.lookahead and kind is not None), "lookahead where it is inexact"
        eligible = self.bounds.eligible(wid)
        plan = self.sched.next_plan(wid, self.clock.now)
        if plan is None:
            assert is_lookahead or not eligible, f"worker {wid} idle while {sorted(eligible)} could run"
            return False
        assert plan.decode and len(plan.decode) <= self.config.max_batch
        ahead = 0
        live = [rid for rid in queued[0]["decode"] if self.sched.get(rid) is not None] if queued else []  # not one that stopped early
        if is_lookahead and kind == "continue" and plan.is_successor:  # others, after a batch that surely finishes
            running = [self.sched.get(rid) for rid in live]
            assert running and all(self.expected[r.rid] - r.num_generated <= queued[0]["steps"]
                                   for r in running), "a successor to a batch that may come back"
            assert not set(plan.decode) & set(live) and not plan.evict, "a successor that continues or evicts"
            assert len(plan.decode) == self.config.max_batch or not eligible - set(plan.decode), "a successor others would join"
        elif is_lookahead and kind == "continue":  # the running batch continues: full, or nobody else to run
            assert plan.is_continuation and plan.decode == live, "not a continuation"
            assert len(plan.decode) == self.config.max_batch or not eligible, "a continuation others would join"
            assert not plan.load and not plan.evict, "a continuation loads or evicts"
            ahead = queued[0]["steps"]
        elif is_lookahead:
            assert len(plan.decode) == self.config.max_batch and not plan.evict, "a lookahead plan rr would not make"
            assert not set(plan.rids()) & {rid for msg in queued for rid in msg["decode"]}, "a request in two plans"
        self.bounds.on_dispatch(plan, eligible, ahead)
        self.inflight.setdefault(wid, []).append({**plan.to_wire(), "is_successor": plan.is_successor})
        self.revoke()
        return True

    def revoke(self) -> None:
        """What the kernel does after every event: mark the continuations a request now outranks
        (the worker drops one unstarted: see complete)."""
        found = self.sched.revocations()
        for wid, plan_id in found:
            queued = self.inflight[wid]
            assert len(queued) == 2 and queued[1]["plan_id"] == plan_id, "revoked a plan that is not queued behind another"
            self.revoking.add(plan_id)
        if self.sched.policy.lookahead != "continue" or not self.bounds.is_valid:
            return
        for wid, queued in self.inflight.items():
            if len(queued) == 2 and (queued[1]["plan_id"] in found or queued[1]["plan_id"] not in self.revoking):
                self.bounds.check_revoke(wid, queued[0], queued[1], (wid, queued[1]["plan_id"]) in found)

    def complete(self, wid: int, is_revoke_first: bool = True) -> bool:
        """Run and answer wid's next plan; a revoked one is dropped unstarted if its revoke
        reached the worker first (is_revoke_first), else it runs."""
        queued = self.inflight.get(wid)
        if not queued:
            return False
        msg = queued.pop(0)
        if msg["plan_id"] in self.revoking and is_revoke_first:
            done = {"worker_id": wid, "plan_id": msg["plan_id"], "t_start": self.clock.now, "t_end": self.clock.now,
                    "revoked": True}
            self.num_revoked += 1
        else:
            done = self.sim.execute(wid, msg)
            self._count_service(done)
        self.revoking.discard(msg["plan_id"])
        for c in self.sched.on_plan_done(wid, PlanResult.from_wire(done), self.clock.now):
            self.absorb(c)
        self.free_stale()
        self.bounds.after_done(msg)
        self.revoke()
        return True

    def _count_service(self, done: dict) -> None:
        for res in done["results"]:
            req = self.sched.get(res["rid"])
            if req is not None and not res.get("error"):
                tokens = res["num_steps"] * req.num_beams
                self.service[req.rid] += tokens
                self.program_service[req.program] += tokens

    def cancel(self, rid: str) -> None:
        effect = self.sched.cancel(rid, self.clock.now)
        assert effect.is_found == (rid in self.expected and rid not in self.completed)
        if effect.is_found:
            self.cancelled.add(rid)
        if effect.completion is not None:
            self.absorb(effect.completion)
        self.revoke()

    def kill(self, wid: int) -> None:
        self.revoking -= {msg["plan_id"] for msg in self.inflight.pop(wid, [])}
        self.sim.kill(wid)
        loss = self.sched.remove_worker(wid, self.clock.now)
        for c in loss.completions:
            assert c.request.rid in self.cancelled, f"{c.request.rid} left with its worker uncancelled"
            self.absorb(c)
        for rid, resume in loss.recovered.items():
            req = self.sched.get(rid)
            assert req is not None and req.num_generated == resume, rid
            if req.checkpoint is None:
                assert req.state is SeqState.WAITING and resume == 0, rid
            else:
                assert req.state is SeqState.READY and resume == req.checkpoint_tokens, rid
            self.sim.free(None, rid)  # what the kernel does with the old snapshot key
            self.recovered.add(rid)
        self.free_stale()
        self.bounds.is_valid = False  # re-queued prefills keep old tickets: bounds void
        self.add_worker()
        self.revoke()

    def free_stale(self) -> None:
        for rid, number in self.sched.take_stale_checkpoints():
            self.sim.free(None, checkpoint_key(rid, number))

    def absorb(self, c: Completion) -> None:
        req = c.request
        assert req.rid not in self.completed, f"{req.rid} completed twice"
        self.completed[req.rid] = c
        if c.needs_free:
            self.sim.free(c.free_worker, req.rid)
        if c.checkpoint is not None:
            self.sim.free(None, checkpoint_key(req.rid, c.checkpoint))
        if req.state is SeqState.FINISHED:
            assert req.num_generated == self.expected[req.rid], (
                f"{req.rid}: {req.num_generated} tokens"
            )
            assert req.output_ids is not None and len(req.output_ids) == self.expected[req.rid]
            assert req.timeline.num_output_tokens == req.num_generated
            if self.config.policy == "fifo":
                assert req.timeline.preemptions == 0, f"fifo preempted {req.rid}"
        elif req.state is SeqState.CANCELLED:
            assert req.rid in self.cancelled
        else:
            raise AssertionError(f"{req.rid} failed: {req.error} (a worker death must lose nothing)")

    def drain(self, max_rounds: int = 20_000) -> None:
        """Run every worker until nothing is live; fails on a deadlock."""
        for _ in range(max_rounds):
            if not self.sched.requests() and not any(self.inflight.values()):
                break
            progressed = False
            for wid in list(self.sim.workers):
                progressed |= self.complete(wid) or self.dispatch(wid)
            assert progressed, f"deadlock: {[(r.rid, r.state) for r in self.sched.requests()]}"
            self.check()
        assert not self.sched.requests(), "drain did not finish"
        assert set(self.completed) == set(self.expected), "request lost"
        assert not self.sim.lmdb, f"leaked snapshots {sorted(self.sim.lmdb)}"
        assert all(not w for w in self.sim.workers.values()), "leaked resident KV"

    # -- invariants ------------------------------------------------------------------------
    def check(self) -> None:
        self.sched.check_integrity()
        live = {r.rid: r for r in self.sched.requests()}
        assert set(live) | set(self.completed) == set(self.expected), "request lost or invented"
        assert not set(live) & set(self.completed), "request both live and completed"
        for req in live.values():
            self._check_location(req)
        for key in self.sim.lmdb:
            rid, _, number = key.partition("#c")
            assert rid in live, f"snapshot {key} leaked"
            if number:  # a checkpoint: the request's current one, or one in flight
                req = live[rid]
                assert int(number) == req.checkpoint or req.state is SeqState.RUNNING, f"stale checkpoint {key}"
        for wid, seqs in self.sim.workers.items():
            for rid in seqs:
                assert rid in live and live[rid].residency in (wid, None), f"{rid} leaked on {wid}"

    def _check_location(self, req: SeqRequest) -> None:
        """Ground truth (sim) matches the scheduler for every request not in flight."""
        if req.state is SeqState.RUNNING:
            return
        in_lmdb = req.rid in self.sim.lmdb
        holders = [w for w, seqs in self.sim.workers.items() if req.rid in seqs]
        if req.state is SeqState.WAITING:
            assert not in_lmdb and not holders, f"{req.rid}: WAITING but loaded"
        elif req.is_restoring_checkpoint:
            key = checkpoint_key(req.rid, req.checkpoint)
            assert key in self.sim.lmdb and not holders, f"{req.rid}: recovering without its checkpoint"
            assert len(self.sim.lmdb[key].seq.generated) == req.num_generated, f"{req.rid}: checkpoint length"
        elif req.has_snapshot:
            assert in_lmdb and not holders, f"{req.rid}: swapped without exactly one snapshot"
            assert self.sim.lmdb[req.rid].has_kv == req.is_snapshot_kv
        else:
            assert holders == [req.residency] and not in_lmdb, f"{req.rid}: resident mismatch"


class BoundTracker:
    """Counts, for each runnable request, the plans it was eligible for but skipped since
    its last requeue (rr) or the last boost (mlfq), and checks the docstring bounds."""

    def __init__(self, h: Harness):
        self.h = h
        self.is_valid = True
        self.skips: dict[str, int] = {}
        self.limit: dict[str, int | None] = {}  # live count the bound is measured from
        self.num_boosts = 0
        self.fair_pending: dict[int, tuple[float, set[str]]] = {}
        self.max_skips_seen = 0

    def eligible(self, wid: int) -> set[str]:
        return {
            r.rid for r in self.h.sched.requests() if r.is_runnable and r.residency in (None, wid)
        }

    def on_requeue(self, rid: str) -> None:
        policy = self.h.config.policy
        self.skips[rid] = 0
        self.limit[rid] = len(self.h.sched.requests()) if policy == "rr" else None

    def on_dispatch(self, plan, eligible: set[str], ahead: int = 0) -> None:
        """`ahead`: steps of the running plan that this one continues (0: not a continuation)."""
        self._on_boost()
        batch = set(plan.decode)
        for rid in eligible - batch:
            self._skip(rid)
        for rid in batch:
            self.skips[rid] = 0
        if self.h.config.policy == "fair":
            self._check_fair_order(plan, eligible - batch)
        self._check_order(plan, eligible - batch, ahead)

    def check_revoke(self, wid: int, running: dict, later: dict, is_revoked: bool) -> None:
        """A continuation or successor is revoked when, by the harness's own count, it is no
        longer the policy's choice (someone else may run on wid and the batch is not full, or
        outranks a member, a continuing one once back), and kept while it is (a tie may go
        either way: tickets decide). A successor's members have not started: fifo keeps no
        place for them."""
        eligible = self.eligible(wid)
        live = {r.rid: r for r in self.h.sched.requests()}
        members = [live[rid] for rid in later["decode"] if rid in live]
        base = self.order_key()
        if later["is_successor"]:
            base = key = base or (lambda r: r.arrival_s)
        else:
            key = self.order_key(running["steps"])
        if not eligible or (len(members) == self.h.config.max_batch and key is None):
            must, may = False, False
        elif len(members) < self.h.config.max_batch:
            must, may = True, True
        else:
            best, worst = min(base(live[rid]) for rid in eligible), max(key(r) for r in members)
            must, may = best < worst, best <= worst
        assert is_revoked <= may, f"plan {later['plan_id']} revoked while it still ranks first"
        assert must <= is_revoked, f"plan {later['plan_id']} kept while {sorted(eligible)} outrank it"

    def _on_boost(self) -> None:
        policy = self.h.sched.policy
        if getattr(policy, "num_boosts", 0) == self.num_boosts:
            return
        self.num_boosts = policy.num_boosts
        num_live = len(self.h.sched.requests())
        for req in self.h.sched.requests():
            self.skips[req.rid], self.limit[req.rid] = 0, num_live

    def _skip(self, rid: str) -> None:
        limit = self.limit.get(rid)
        if limit is None or not self.is_valid:
            return
        self.skips[rid] += 1
        self.max_skips_seen = max(self.max_skips_seen, self.skips[rid])
        assert self.skips[rid] <= limit - 1, (
            f"{self.h.config.policy}: {rid} skipped by {self.skips[rid]} eligible plans, bound {limit - 1}"
        )

    def _check_order(self, plan, skipped: set[str], ahead: int = 0) -> None:
        """srpt, las, plas, priority: every request served comes no later, by the quantity the
        policy claims to order by (computed here from the harness's own records, for a
        continuation as its members will be once back from the running slice), than every
        request it may run and skipped."""
        key = self.order_key()
        if key is None or not skipped:
            return
        live = {r.rid: r for r in self.h.sched.requests()}
        worst_served = max(self.order_key(ahead)(live[rid]) for rid in plan.decode)
        best_skipped = min(key(live[rid]) for rid in skipped)
        assert worst_served <= best_skipped, f"{self.h.config.policy} served {worst_served} over {best_skipped}"

    def order_key(self, ahead: int = 0):
        """The policy's order for a request, after `ahead` more steps of it."""
        h = self.h
        return {
            "srpt": lambda r: max(0, (r.expected_tokens or r.max_new_tokens) - r.num_generated - ahead),
            "las": lambda r: h.service[r.rid] + ahead * r.num_beams,
            "plas": None if ahead else lambda r: h.program_service[r.program],
            "priority": lambda r: r.arrival_s + r.priority * h.config.priority_aging_s,
        }.get(h.config.policy)

    def _check_fair_order(self, plan, skipped: set[str]) -> None:
        policy = self.h.sched.policy
        agent = {r.rid: r.agent for r in self.h.sched.requests()}
        served = {agent[rid] for rid in plan.decode}
        if not skipped:
            return
        floor = min(policy.counter[agent[rid]] for rid in skipped)
        for a in served:
            assert policy.counter[a] <= floor, f"fair served {a} above a waiting agent"
        self.fair_pending[plan.plan_id] = (floor, served)

    def after_done(self, msg: dict) -> None:
        for rid in msg["decode"]:
            if rid in self.skips and self.h.sched.get(rid) is not None:
                self.on_requeue(rid)
        pending = self.fair_pending.pop(msg["plan_id"], None)
        if pending is None or len(self.h.sim.workers) != 1 or not self.is_valid:
            return
        floor, served = pending
        cfg = self.h.config
        lag_bound = cfg.max_batch * cfg.quantum * 3  # max_beams 3, weights 1
        for a in served:
            assert self.h.sched.policy.counter[a] - floor <= lag_bound, (
                f"fair lag of {a} over bound"
            )
