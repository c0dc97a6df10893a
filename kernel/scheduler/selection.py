"""Pure choice of a plan's batch, slice length and evictions for one worker.

Contract: called by Scheduler.next_plan. With no plan outstanding on `wid` every request
resident on `wid` is READY and appears in `ranked`; with one (a lookahead) its requests are
RUNNING and appear nowhere here, and the caller takes the plan only if it evicts nothing and fits.
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest, WorkerId


def candidates(requests: Iterable[SeqRequest], wid: WorkerId) -> list[SeqRequest]:
    """Runnable requests `wid` may take (not resident on another worker)."""
    return [r for r in requests if r.is_runnable and r.residency in (None, wid)]


def rank_candidates(
    requests: Iterable[SeqRequest], wid: WorkerId, policy: Policy, previous_batch: set[str]
) -> list[SeqRequest]:
    """candidates() best first. A non-preemptive policy keeps the previous batch of `wid` in front."""
    eligible = candidates(requests, wid)
    if policy.is_preemptive:
        return sorted(eligible, key=policy.rank_key)
    return sorted(eligible, key=lambda r: (r.rid not in previous_batch, policy.rank_key(r)))


def reserved_steps(req: SeqRequest, steps: int, policy: Policy) -> int:
    """Steps of KV to reserve: the slice, or the whole rest for a non-preemptive policy."""
    return steps if policy.is_preemptive else req.num_remaining


def select_batch(
    ranked: list[SeqRequest], policy: Policy, budget: KVBudget, max_batch: int, bpt: int
) -> tuple[list[SeqRequest], int]:
    """The longest prefix of `ranked` (<= max_batch) whose KV after the slice fits the budget.

    Stopping at the first misfit (no skipping ahead) keeps the policy's order and its bounds;
    it never deadlocks because submit rejects a request that cannot fit alone.
    """
    batch: list[SeqRequest] = []
    steps = 0
    for req in ranked[:max_batch]:
        trial = [*batch, req]
        trial_steps = policy.slice_steps(trial)
        need = sum(
            kv_footprint_bytes(r, reserved_steps(r, trial_steps, policy), bpt) for r in trial
        )
        if not budget.fits(need):
            break
        batch, steps = trial, trial_steps
    return batch, steps


def reserved_total(reservations: dict[str, int], budget: KVBudget) -> int:
    """The worker's KV bytes once the batch holds `reservations` and nobody is evicted."""
    return budget.used_bytes + sum(n - budget.reserved.get(rid, 0) for rid, n in reservations.items())


def choose_evictions(
    ranked: list[SeqRequest], wid: WorkerId, reservations: dict[str, int], budget: KVBudget
) -> list[SeqRequest]:
    """Idle residents of `wid` to evict, lowest rank first, until the batch's `reservations`
    plus what stays resident fit the budget (with no plan outstanding on `wid` they always can:
    the batch alone fits)."""
    total = reserved_total(reservations, budget)
    victims: list[SeqRequest] = []
    for req in reversed(ranked):
        if budget.fits(total):
            break
        if req.residency == wid and req.rid not in reservations:
            victims.append(req)
            total -= budget.reserved[req.rid]
    return victims
