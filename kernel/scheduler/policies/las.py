"""Least attained service (foreground-background): the least-served request first."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class LasPolicy(Policy):
    """Ranks by the service a request has received: tokens decoded for it (steps * num_beams,
    counted here, so a replay after a worker death does not earn it a second turn); equal
    service rotates (arrival/requeue order). Knows nothing of lengths, yet for length laws of
    decreasing hazard (heavy tails) it favours the short: whoever has run longest is likely
    to run longer. Slices of `quantum` steps.

    No starvation bound: a stream of fresh requests delays a long-served one forever."""

    name = "las"
    lookahead = "continue"  # while the running batch stays the least served; a less served one revokes it

    def __init__(self, config):
        super().__init__(config)
        self.attained: dict[str, int] = {}

    def on_submit(self, req: SeqRequest, now: float) -> None:
        super().on_submit(req, now)
        self.attained[req.rid] = 0

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        self.attained[req.rid] += num_steps * req.num_beams
        self.requeue(req)

    def on_retire(self, req: SeqRequest) -> None:
        super().on_retire(req)
        self.attained.pop(req.rid, None)

    def rank_key(self, req: SeqRequest) -> tuple:
        return (self.attained[req.rid], self.ticket[req.rid])

    def projected_key(self, req: SeqRequest, num_steps: int) -> tuple:
        return (self.attained[req.rid] + num_steps * req.num_beams, math.inf)

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
