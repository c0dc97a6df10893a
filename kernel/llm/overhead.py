"""The scheduler+IPC overhead figures of sched.stats: worker busy time per decode step against the
gap between back-to-back plans per step. Owner: LLMService (kernel main thread)."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.scheduler import PlanResult


@dataclass(slots=True)
class Overhead:
    """Worker busy time vs the gap between back-to-back plans (kernel scheduling + IPC)."""

    num_plans: int = 0
    num_lookahead_plans: int = 0  # sent while the worker still ran its previous plan
    num_revokes: int = 0  # revokes sent (continuations or successors a newcomer outranked)
    num_revoked_plans: int = 0  # of those, plans the worker dropped unstarted (the rest ran)
    num_steps: int = 0
    busy_s: float = 0.0
    num_gap_steps: int = 0
    gap_s: float = 0.0

    def to_wire(self) -> dict:
        busy_per_step = self.busy_s / self.num_steps if self.num_steps else None
        gap_per_step = self.gap_s / self.num_gap_steps if self.num_gap_steps else None
        ratio = gap_per_step / busy_per_step if gap_per_step is not None and busy_per_step else None
        return {"num_plans": self.num_plans, "num_lookahead_plans": self.num_lookahead_plans,
                "num_revokes": self.num_revokes, "num_revoked_plans": self.num_revoked_plans,
                "num_steps": self.num_steps, "busy_s": self.busy_s,
                "gap_s": self.gap_s, "busy_per_step_s": busy_per_step, "gap_per_step_s": gap_per_step,
                "overhead_ratio": ratio}


class OverheadMeter:
    """Feeds Overhead from plans sent and plan results."""

    def __init__(self) -> None:
        self.totals = Overhead()
        self._last_end: dict[int, float] = {}  # worker -> t_end of its last plan
        self._back_to_back: set[tuple[int, object]] = set()  # (worker, plan id) of plans sent at once after the previous

    def on_plan(self, wid: int, plan_id: object, is_back_to_back: bool, is_lookahead: bool) -> None:
        """A plan sent: right after the previous plan's plan_done (back to back), or queued behind
        a running one (a lookahead, also back to back)."""
        self.totals.num_lookahead_plans += is_lookahead
        if is_back_to_back or is_lookahead:
            self._back_to_back.add((wid, plan_id))

    def on_done(self, wid: int, result: PlanResult) -> None:
        o = self.totals
        if result.is_revoked:  # never ran: the plan after it is timed from the one before
            o.num_revoked_plans += 1
            self._back_to_back.discard((wid, result.plan_id))
            return
        steps = max((r.num_steps for r in result.results.values()), default=0)
        o.num_plans += 1
        o.num_steps += steps
        o.busy_s += max(0.0, result.t_end - result.t_start)
        if (wid, result.plan_id) in self._back_to_back and wid in self._last_end:
            o.gap_s += max(0.0, result.t_start - self._last_end[wid])
            o.num_gap_steps += steps
        self._back_to_back.discard((wid, result.plan_id))
        self._last_end[wid] = result.t_end

    def forget(self, wid: int) -> None:
        self._last_end.pop(wid, None)
        self._back_to_back = {key for key in self._back_to_back if key[0] != wid}

    def to_wire(self) -> dict:
        return self.totals.to_wire()
