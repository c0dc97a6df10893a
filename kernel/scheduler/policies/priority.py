"""Priority with aging: lower value first, a waiting request gains one level per
priority_aging_s; preemptive at slice boundaries."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


def virtual_deadline(req: SeqRequest, aging_s: float) -> float:
    """arrival + priority * aging_s: a request that has waited w seconds ranks as if its
    priority were priority - w / aging_s, and the order of that is the order of this."""
    return req.arrival_s + req.priority * aging_s


class PriorityPolicy(Policy):
    """Ranks by virtual_deadline (ties: arrival/requeue order), so a lower priority value
    goes first among requests of similar age, and within a priority, first come first served.

    Bound: a request R with deadline d runs ahead of every request arriving after d (their
    deadlines exceed d since priorities are >= 0). So after time d, the plans that skip R
    serve only requests that were live at d, and each of those skips it only until it
    finishes: R waits at most priority * priority_aging_s, then for the rest of the work live
    at that time with an earlier deadline (with lookahead, plus at most one slice when the
    revoke of a continuation reaches the worker after it started that continuation)."""

    name = "priority"
    lookahead = "continue"  # while the running batch keeps the earliest deadlines; an earlier one revokes it

    def rank_key(self, req: SeqRequest) -> tuple:
        return (virtual_deadline(req, self.config.priority_aging_s), self.ticket[req.rid])

    def projected_key(self, req: SeqRequest, num_steps: int) -> tuple:
        return self.rank_key(req)  # a deadline is fixed and a slice does not requeue

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
