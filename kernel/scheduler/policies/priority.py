"""Static priority: lower value first, then arrival; preemptive at slice boundaries."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class PriorityPolicy(Policy):
    """No starvation bound: a stream of higher-priority work delays lower priorities forever."""

    name = "priority"

    def rank_key(self, req: SeqRequest) -> tuple:
        return (req.priority, req.arrival_s, self.ticket[req.rid])

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
