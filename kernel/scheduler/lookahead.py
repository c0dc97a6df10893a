"""Lookahead: which plan a worker may be sent while it still runs one (SchedConfig.lookahead).

Pure (stdlib only), like selection.py. A lookahead plan is made only where it is the plan the
policy would choose once the running plan returns, whatever that plan does (Policy.lookahead):
"next" (rr) takes other requests, "continue" (fifo) the running batch again.
"""

from __future__ import annotations

from kernel.scheduler.budget import KVBudget, kv_footprint_bytes
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest
from kernel.scheduler.selection import reserved_steps, reserved_total


def next_is_exact(batch: list[SeqRequest], max_batch: int, num_victims: int, reservations: dict[str, int],
                  budget: KVBudget) -> bool:
    """rr: a plan of other requests than the running ones is rr's next choice when its batch is
    full (else the running ones, back from their slice, would join it) and it fits beside them
    without evicting anyone (else they, last in rr's order, would be the first evicted)."""
    return len(batch) == max_batch and not num_victims and budget.fits(reserved_total(reservations, budget))


def continuation(batch: list[SeqRequest], running_steps: int, policy: Policy, budget: KVBudget, max_batch: int,
                 bpt: int) -> tuple[int, dict[str, int]] | None:
    """fifo: the running batch (its live members) runs on for another slice when it is full
    (newcomers rank behind it) and no member surely finishes in the running slice. Returns the
    slice's steps and each member's KV reservation after both slices, or None.

    A member that stops early (EOS, a stop string) leaves when the running plan returns; the
    worker, which no longer holds it, answers it in the continuation with an error that the
    scheduler drops, and a newcomer that would have taken its place starts one slice later."""
    if len(batch) < max_batch or any(r.num_remaining <= running_steps for r in batch):
        return None
    steps = policy.slice_steps(batch)
    reservations = {r.rid: kv_footprint_bytes(r, running_steps + reserved_steps(r, steps, policy), bpt)
                    for r in batch}
    return (steps, reservations) if budget.fits(reserved_total(reservations, budget)) else None
