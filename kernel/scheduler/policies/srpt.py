"""Shortest remaining processing time by the request's length hint; preemptive at slices."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


def remaining_hint(req: SeqRequest) -> int:
    """Steps the request is expected to still need: its hint (expected_tokens, else
    max_new_tokens) minus the steps decoded. A request past its hint counts as about to
    finish (0), as in SPRPT (Mitzenmacher 2020): it never goes behind a fresh arrival."""
    hint = req.expected_tokens if req.expected_tokens is not None else req.max_new_tokens
    return max(0, hint - req.num_generated)


class SrptPolicy(Policy):
    """The least remaining_hint first (ties: arrival/requeue order); slices of `quantum`
    steps, so a shorter arrival preempts at the next slice boundary. With exact hints this is
    the order that minimizes mean turnaround; a hint only ranks, it never cuts a request.

    No starvation bound: a stream of shorter requests delays a long one forever."""

    name = "srpt"
    lookahead = "continue"  # while the running batch stays the shortest; a shorter arrival revokes it

    def on_slice(self, req: SeqRequest, num_steps: int, now: float) -> None:
        self.requeue(req)

    def rank_key(self, req: SeqRequest) -> tuple:
        return (remaining_hint(req), self.ticket[req.rid])

    def projected_key(self, req: SeqRequest, num_steps: int) -> tuple:
        hint = req.expected_tokens if req.expected_tokens is not None else req.max_new_tokens
        return (max(0, hint - req.num_generated - num_steps), math.inf)

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.quantum
