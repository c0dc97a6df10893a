"""Multilevel feedback queue with demotion and a periodic boost."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class MlfqPolicy(Policy):
    """New requests enter level 0; level l has quantum * 2**l steps; using up the quantum at a
    level demotes one level (the last level keeps it); round robin within a level. Every
    mlfq_boost_s (checked at each plan) all requests return to level 0.

    Bound: after the first boost that follows a request's last requeue, it is scheduled within
    n - 1 plans it is eligible for, n = live requests at that boost (all share level 0 then,
    and everything decoded or arriving later queues behind it). So a runnable request waits at
    most mlfq_boost_s plus one round."""

    name = "mlfq"

    def __init__(self, config):
        super().__init__(config)
        self.level: dict[str, int] = {}
        self.used_steps: dict[str, int] = {}
        self.last_boost_s: float | None = None
        self.num_boosts = 0

    def quantum(self, level: int) -> int:
        return self.config.quantum * 2**level

    def on_submit(self, req: SeqRequest, now: float) -> None:
        super().on_submit(req, now)
        self.level[req.rid] = 0
        self.used_steps[req.rid] = 0

    def on_plan(self, now: float) -> None:
        if self.last_boost_s is None:
            self.last_boost_s = now
        elif now - self.last_boost_s >= self.config.mlfq_boost_s:
            self._boost(now)

    def _boost(self, now: float) -> None:
        for rid in self.level:
            self.level[rid] = 0
            self.used_steps[rid] = 0
        self.last_boost_s = now
        self.num_boosts += 1

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        used = self.used_steps[req.rid] + num_steps
        level = self.level[req.rid]
        if used >= self.quantum(level):
            self.level[req.rid] = min(level + 1, self.config.mlfq_levels - 1)
            used = 0
        self.used_steps[req.rid] = used
        self.requeue(req)

    def on_retire(self, req: SeqRequest) -> None:
        super().on_retire(req)
        self.level.pop(req.rid, None)
        self.used_steps.pop(req.rid, None)

    def rank_key(self, req: SeqRequest) -> tuple:
        return (self.level[req.rid], self.ticket[req.rid])

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        """The smallest quantum left in the batch, so no member overruns its level."""
        return min(self.quantum(self.level[r.rid]) - self.used_steps[r.rid] for r in batch)
