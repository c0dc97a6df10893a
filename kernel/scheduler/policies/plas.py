"""Program-level attained service (Autellix's PLAS, arXiv 2502.13965)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest

Program = tuple[str, str | None]


class PlasPolicy(Policy):
    """Ranks a call by the service its program has received: tokens decoded (steps *
    num_beams) for all the program's calls so far, this one included. A program is
    SeqRequest.program: the agent's calls under one program_id, or all its calls without one.
    So the next call of a long program queues behind a new program's first call, and short
    programs finish first (least attained service lifted from calls to programs). Equal
    service rotates (arrival/requeue order); slices of `quantum` steps.

    A program with no live call for plas_forget_s is forgotten (it starts again from 0), so
    the table stays bounded. No starvation bound: new programs delay a long one forever."""

    name = "plas"

    def __init__(self, config):
        super().__init__(config)
        self.service: dict[Program, int] = {}
        self.num_live: Counter[Program] = Counter()
        self.idle_since: dict[Program, float] = {}  # programs with no live call
        self.last_sweep_s = 0.0
        self.now_s = 0.0  # the latest time a hook was given

    def on_submit(self, req: SeqRequest, now: float) -> None:
        super().on_submit(req, now)
        self.now_s = now
        self.service.setdefault(req.program, 0)
        self.num_live[req.program] += 1
        self.idle_since.pop(req.program, None)

    def on_plan(self, now: float) -> None:
        self.now_s = now
        if now - self.last_sweep_s < self.config.plas_forget_s:
            return
        self.last_sweep_s = now
        for program, since in list(self.idle_since.items()):
            if now - since >= self.config.plas_forget_s:
                del self.idle_since[program], self.service[program]

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        self.now_s = now
        self.service[req.program] += num_steps * req.num_beams
        self.requeue(req)

    def on_retire(self, req: SeqRequest) -> None:
        super().on_retire(req)
        self.num_live[req.program] -= 1
        if self.num_live[req.program] <= 0:
            del self.num_live[req.program]
            self.idle_since[req.program] = self.now_s

    def rank_key(self, req: SeqRequest) -> tuple:
        return (self.service[req.program], self.ticket[req.rid])

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
