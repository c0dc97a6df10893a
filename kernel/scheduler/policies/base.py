"""The one interface every scheduling policy implements.

A policy only orders runnable requests and sizes slices; the Scheduler owns placement, KV
and plans. Contract: rank_key() is a total order (ties broken by a unique ticket); the
Scheduler fills a batch with a prefix of that order, so a policy decides who goes next and
thereby who is preempted. Hooks are called by the Scheduler only.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from kernel.scheduler.config import SchedConfig
from kernel.scheduler.request import SeqRequest


class Policy(ABC):
    name: ClassVar[str]
    is_preemptive: ClassVar[bool] = True  # False: a batch member keeps its place until it finishes
    # How the plan after a running one may be chosen while it runs (SchedConfig.lookahead), where
    # the choice cannot depend on what the running plan does: "next" (its requests rank behind
    # every other candidate once back, whatever the slice did: the next plan is of other requests),
    # "continue" (the running batch again, while it still ranks first: see projected_key), None (never)
    lookahead: ClassVar[str | None] = None

    def __init__(self, config: SchedConfig):
        self.config = config
        self._tickets = itertools.count()
        self.ticket: dict[str, int] = {}  # position in arrival/requeue order, unique

    def requeue(self, req: SeqRequest) -> None:
        """Put `req` at the back of its queue (a fresh, largest ticket)."""
        self.ticket[req.rid] = next(self._tickets)

    def on_submit(self, req: SeqRequest, now: float) -> None:
        self.requeue(req)

    def on_plan(self, now: float) -> None:
        """Called at the start of every next_plan, before ranking."""
        return None

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        """Called when a slice of `req` returns (num_steps decoded)."""
        return None

    def on_retire(self, req: SeqRequest) -> None:
        """Called once when `req` leaves the scheduler."""
        self.ticket.pop(req.rid, None)

    @abstractmethod
    def rank_key(self, req: SeqRequest) -> tuple:
        """Smaller runs first."""

    def projected_key(self, req: SeqRequest, num_steps: int) -> tuple:
        """The rank_key `req` will have once a running slice of num_steps returns (on_slice
        done), for a preemptive policy with lookahead "continue"; a requeued request ranks
        behind every current ticket."""
        raise NotImplementedError(f"{self.name} does not look ahead")

    @abstractmethod
    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        """Decode steps for a plan decoding `batch` (non-empty)."""
