"""Invariants of the scheduler core, checked by Scheduler.check_integrity().

Run as the hypothesis state-machine invariant and when the kernel is idle in debug mode.
Each assertion message names the request or worker that broke it.
"""

from __future__ import annotations

from collections import Counter

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes
from kernel.scheduler.plan import Plan
from kernel.scheduler.request import SeqRequest, SeqState, WorkerId


def check_scheduler(
    requests: dict[str, SeqRequest],
    prompts: dict[str, tuple[list[int], dict]],
    plans: dict[WorkerId, list[Plan]],
    budgets: dict[WorkerId, KVBudget],
    bpt: int,
) -> None:
    plan_of = _plan_membership(plans, requests)
    for rid, req in requests.items():
        assert rid == req.rid and not req.state.is_terminal, f"{rid}: terminal or misfiled"
        assert req.residency is None or req.residency in budgets, f"{rid}: on unknown worker"
        _check_request(req, plan_of.get(rid), prompts, budgets, bpt)
    counts = Counter(r.state for r in requests.values())
    num_counted = counts[SeqState.WAITING] + counts[SeqState.READY] + counts[SeqState.RUNNING]
    assert num_counted == len(requests), f"state counts {dict(counts)} != {len(requests)} live"
    assert set(prompts) == set(requests), "a live request without its prompt, or a prompt kept for one that left"
    for wid, budget in budgets.items():
        budget.check_integrity(wid)
        resident = {rid for rid, r in requests.items() if r.residency == wid}
        assert set(budget.reserved) == resident, f"worker {wid}: ledger != resident requests"
    assert set(plans) <= set(budgets), "plan outstanding on an unknown worker"


def _plan_membership(
    plans: dict[WorkerId, list[Plan]], requests: dict[str, SeqRequest]
) -> dict[str, Plan]:
    plan_of: dict[str, Plan] = {}
    for wid, queued in plans.items():
        assert len(queued) <= 2, f"worker {wid} has {len(queued)} plans outstanding (at most 2)"
        for i, plan in enumerate(queued):
            assert plan.worker_id == wid, f"plan {plan.plan_id} filed under worker {wid}"
            assert not plan.is_continuation or not (plan.load or plan.evict), f"continuation {plan.plan_id} moves KV"
            assert not plan.is_revoking or (plan.is_revocable and (i == 1 or len(queued) == 1)), (
                f"plan {plan.plan_id} revoked but not a continuation or successor queued behind another")
            assert not plan.is_successor or not plan.evict, (
                f"successor {plan.plan_id} evicts")
            for rid in plan.rids():
                if rid not in requests:  # a continuation of one that stopped early in the plan before
                    is_continued = rid in plan.decode and all(s.rid != rid for s in plan.load)
                    assert is_continued, f"{rid} in plan {plan.plan_id} but not live"
                    continue
                earlier = plan_of.get(rid)
                assert earlier is None or (earlier.worker_id == wid and rid in earlier.decode and rid in plan.decode
                                           and not plan.load), f"{rid} in two outstanding plans, not a continuation"
                plan_of[rid] = plan  # the later one: a continuing request's plan_id
    return plan_of


def _check_request(
    req: SeqRequest, plan: Plan | None, prompts: dict, budgets: dict[WorkerId, KVBudget], bpt: int
) -> None:
    rid = req.rid
    if req.state is not SeqState.RUNNING:
        assert plan is None and req.plan_id is None, f"{rid}: {req.state.value} but in a plan"
    if req.state is SeqState.WAITING:
        assert req.residency is None and not req.has_snapshot, f"{rid}: WAITING but loaded"
        assert rid in prompts, f"{rid}: WAITING without its prompt"
    elif req.state is SeqState.READY:
        assert (req.residency is not None) != req.has_snapshot, (
            f"{rid}: READY must be either resident or snapshotted (resident={req.residency}, "
            f"snapshot={req.has_snapshot})"
        )
        if req.residency is not None:
            held = budgets[req.residency].reserved.get(rid)
            assert held == kv_footprint_bytes(req, 0, bpt), f"{rid}: ledger {held} != footprint"
    else:
        assert plan is not None and req.plan_id == plan.plan_id, f"{rid}: RUNNING outside its plan"
        if rid in plan.decode:
            assert req.residency == plan.worker_id, f"{rid}: decoded on a worker it is not on"
            held = budgets[plan.worker_id].reserved.get(rid, -1)
            assert held >= kv_footprint_bytes(req, 0, bpt), f"{rid}: under-reserved"
        else:
            assert req.residency is None, f"{rid}: being evicted but still resident"
    assert req.num_generated <= req.max_new_tokens, f"{rid}: generated past max_new_tokens"
    assert req.checkpoint is None or req.checkpoint_tokens <= req.num_generated, f"{rid}: checkpoint ahead"
    if req.is_restoring_checkpoint:
        assert req.checkpoint is not None and req.has_snapshot and req.state is not SeqState.WAITING, (
            f"{rid}: restoring a checkpoint it does not have")
