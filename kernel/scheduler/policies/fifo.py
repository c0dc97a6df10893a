"""First come, first served; non-preemptive: a batch member runs until it finishes."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.scheduler.policies.base import Policy
from kernel.scheduler.request import SeqRequest


class FifoPolicy(Policy):
    """Arrival order. Non-preemptive: the Scheduler keeps the previous batch first and reserves
    each member's whole KV footprint, so a member is never evicted; new requests join when
    there is room. Slices of fifo_slice_steps only return control to the kernel."""

    name = "fifo"
    is_preemptive = False
    lookahead = "continue"  # a full batch runs on; newcomers rank behind it

    def rank_key(self, req: SeqRequest) -> tuple:
        return (req.arrival_s, self.ticket[req.rid])

    def slice_steps(self, batch: Sequence[SeqRequest]) -> int:
        return self.config.fifo_slice_steps
