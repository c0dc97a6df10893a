"""Fair sharing between agents with virtual token counters (VTC, Sheng et al. 2024)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class FairPolicy(Policy):
    """Each agent has a counter of weighted service: tokens decoded (steps * num_beams) divided
    by its weight (config.fair_weights, default 1). The agent with the least counter goes next
    (its requests in ticket order). An agent that becomes active (no live request before) has
    its counter lifted to the minimum of the active agents, so idling earns no credit.

    Bound (lag, VTC's in batch form): a plan that skips a runnable request of agent a serves
    only agents whose counter was <= a's at dispatch, so after it every agent it served is at
    most U = max_batch * quantum * max_beams / min_weight ahead of a, per outstanding plan."""

    name = "fair"

    def __init__(self, config):
        super().__init__(config)
        self.counter: dict[str, float] = {}
        self.num_live: Counter[str] = Counter()

    def on_submit(self, req: SeqRequest, now: float) -> None:
        super().on_submit(req, now)
        if self.num_live[req.agent] == 0:
            self._lift(req.agent)
        self.num_live[req.agent] += 1

    def _lift(self, agent: str) -> None:
        active = [self.counter[a] for a, n in self.num_live.items() if n > 0]
        floor = min(active) if active else 0.0
        self.counter[agent] = max(self.counter.get(agent, 0.0), floor)

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        tokens = num_steps * req.num_beams
        self.counter[req.agent] += tokens / self.config.fair_weight(req.agent)
        self.requeue(req)

    def on_retire(self, req: SeqRequest) -> None:
        super().on_retire(req)
        self.num_live[req.agent] -= 1
        if self.num_live[req.agent] <= 0:
            del self.num_live[req.agent]

    def rank_key(self, req: SeqRequest) -> tuple:
        return (self.counter[req.agent], self.ticket[req.rid])

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
