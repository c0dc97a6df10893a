"""Round robin: `quantum` steps per slice, then to the back of the queue."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class RoundRobinPolicy(Policy):
    """Bound: a request that joined the back of the queue when n requests were live is
    scheduled within n - 1 plans among those it is eligible for (every such plan that skips
    it decodes at least one request ahead of it, which then goes behind it); with one worker
    and no KV pressure, within ceil(n / max_batch) plans."""

    name = "rr"
    lookahead = "next"  # a returned slice's requests go to the back of the queue

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        self.requeue(req)

    def rank_key(self, req: SeqRequest) -> tuple:
        return (self.ticket[req.rid],)

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
