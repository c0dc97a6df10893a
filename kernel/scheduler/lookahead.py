"""Lookahead: which plan a worker may be sent while it still runs one (SchedConfig.lookahead).

Pure (stdlib only), like selection.py. A lookahead plan is made only where it is the plan the
policy would choose once the running plan returns, whatever that plan does (Policy.lookahead):
"next" (rr) takes other requests, "continue" (fifo, srpt, las, priority) the running batch
again. A continuation stays the policy's choice only while no other request would take a
member's place (continuation_holds): the kernel revokes it when an arrival (or any request
becoming runnable) would, and the worker drops it if it has not started it. Where every
member of the running batch surely finishes in its slice, "continue" sends the batch the
policy picks among the others instead (a successor), revoked the same way when a request
becomes runnable that would join it or take a member's place (successor_holds).
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest, WorkerId
from kernel.scheduler.selection import candidates, reserved_steps, reserved_total


def next_is_exact(batch: list[SeqRequest], max_batch: int, num_victims: int, reservations: dict[str, int],
                  budget: KVBudget) -> bool:
    """rr: a plan of other requests than the running ones is rr's next choice when its batch is
    full (else the running ones, back from their slice, would join it) and it fits beside them
    without evicting anyone (else they, last in rr's order, would be the first evicted)."""
    return len(batch) == max_batch and not num_victims and budget.fits(reserved_total(reservations, budget))


def best_other(requests: Iterable[SeqRequest], wid: WorkerId, policy: Policy) -> SeqRequest | None:
    """The best-ranked runnable request `wid` may take (the running ones are not runnable)."""
    return min(candidates(requests, wid), key=policy.rank_key, default=None)


def continuation_holds(batch: list[SeqRequest], running_steps: int, best: SeqRequest | None, policy: Policy,
                       max_batch: int) -> bool:
    """Whether the running batch, back from its slice of running_steps, is again the policy's
    whole choice against `best` (best_other): nobody else is runnable, or the batch is full
    and (for a preemptive policy) every member's projected rank is ahead of it (a
    non-preemptive member keeps its place)."""
    if best is None:
        return True
    if len(batch) < max_batch:
        return False
    if not policy.is_preemptive:
        return True
    return max(policy.projected_key(r, running_steps) for r in batch) < policy.rank_key(best)


def continuation(batch: list[SeqRequest], running_steps: int, best: SeqRequest | None, policy: Policy,
                 budget: KVBudget, max_batch: int, bpt: int) -> tuple[int, dict[str, int]] | None:
    """The running batch (its live members) runs on for another slice where continuation_holds
    and no member surely finishes in the running slice. Returns the slice's steps and each
    member's KV reservation after both slices, or None.

    A member that stops early (EOS, a stop string) leaves when the running plan returns; the
    worker, which no longer holds it, answers it in the continuation with an error that the
    scheduler drops, and a newcomer that would have taken its place starts one slice later."""
    if not batch or any(r.num_remaining <= running_steps for r in batch):
        return None
    if not continuation_holds(batch, running_steps, best, policy, max_batch):
        return None
    steps = policy.slice_steps(batch)
    reservations = {r.rid: kv_footprint_bytes(r, running_steps + reserved_steps(r, steps, policy), bpt)
                    for r in batch}
    return (steps, reservations) if budget.fits(reserved_total(reservations, budget)) else None


def surely_finishes(batch: list[SeqRequest], running_steps: int) -> bool:
    """Every live member of the running batch reaches max_new_tokens within its slice (or
    stops earlier): none is back once it returns."""
    return bool(batch) and all(r.num_remaining <= running_steps for r in batch)


def successor_holds(batch: list[SeqRequest], best: SeqRequest | None, policy: Policy, max_batch: int) -> bool:
    """Whether `batch`, sent to run after a batch that surely finishes, is still the policy's
    whole choice against `best` (best_other): nobody else is runnable, or the batch is full and
    every member ranks ahead of it (none of them has started, so a non-preemptive policy keeps
    no place for them)."""
    if best is None:
        return True
    return len(batch) == max_batch and max(policy.rank_key(r) for r in batch) < policy.rank_key(best)
