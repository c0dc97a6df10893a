"""The disciplines of the ideal replay (benchmarks/ideal.py), one per kernel policy.

Contract: shares() returns (job, share) pairs with shares summing to 1 whenever a job is
present, constant until the next event; horizon() is the time to the discipline's next
breakpoint (math.inf if none); advance() updates its own state after `dt` at those shares;
on_finish() is told of each job that leaves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.ideal import Job

Shares = list[tuple["Job", float]]
TIE_S = 1e-12  # service levels closer than this are tied


class Discipline:
    def on_arrival(self, job: Job, active: list[Job], now: float) -> None:
        return None

    def shares(self, active: list[Job], now: float) -> Shares:
        raise NotImplementedError

    def horizon(self, shares: Shares, active: list[Job], now: float) -> float:
        return math.inf

    def advance(self, shares: Shares, active: list[Job], dt: float, now: float) -> None:
        return None

    def on_finish(self, job: Job) -> None:
        return None


class Fifo(Discipline):
    """First come, first served (non-preemptive and preemptive coincide)."""

    def shares(self, active, now):
        return [(min(active, key=lambda j: (j.spec.arrival_s, j.index)), 1.0)]


class ProcessorSharing(Discipline):
    """Every present job at 1/n: round robin with a vanishing quantum."""

    def shares(self, active, now):
        return [(job, 1.0 / len(active)) for job in active]


class Srpt(Discipline):
    """Least remaining hint first (hint - attained, 0 once past it, as the kernel's srpt),
    preemptive at once; exact hints give SRPT, the optimum for mean turnaround."""

    def shares(self, active, now):
        def key(j: Job) -> tuple:
            hint = j.spec.size_s if j.spec.hint_s is None else j.spec.hint_s
            return (max(0.0, hint - j.attained_s), j.spec.arrival_s, j.index)

        return [(min(active, key=key), 1.0)]


class PriorityAging(Discipline):
    """Least virtual deadline (arrival + priority * aging_s) first, preemptive."""

    def __init__(self, aging_s: float = 1.0, **_: float):
        self.aging_s = aging_s

    def shares(self, active, now):
        best = min(active, key=lambda j: (j.spec.arrival_s + j.spec.priority * self.aging_s, j.index))
        return [(best, 1.0)]


class LeastServedGroups(Discipline):
    """Groups of jobs, each with a service counter; the tied least-served groups share the
    server equally, each group's share split equally among its present jobs. `group` maps a
    job to its group; with `lift`, a group becoming active is lifted to the least counter of
    the active ones (fair/VTC), else it keeps its own (las, plas)."""

    def __init__(self, group: Callable[[Job], Hashable], lift: bool):
        self.group, self.lift = group, lift
        self.counter: dict[Hashable, float] = {}
        self.num_present: Counter[Hashable] = Counter()

    def on_arrival(self, job, active, now):
        g = self.group(job)
        if self.num_present[g] == 0:
            floor = min((self.counter[h] for h in self.num_present), default=0.0)
            own = self.counter.get(g, 0.0)
            self.counter[g] = max(own, floor) if self.lift else own
        self.num_present[g] += 1

    def _least(self, active: list[Job]) -> tuple[dict[Hashable, list[Job]], float]:
        members: dict[Hashable, list[Job]] = {}
        for job in active:
            members.setdefault(self.group(job), []).append(job)
        low = min(self.counter[g] for g in members)
        return {g: js for g, js in members.items() if self.counter[g] <= low + TIE_S}, low

    def shares(self, active, now):
        least, _ = self._least(active)
        return [(job, 1.0 / len(least) / len(js)) for js in least.values() for job in js]

    def horizon(self, shares, active, now):
        least, low = self._least(active)
        above = [self.counter[self.group(j)] for j in active if self.group(j) not in least]
        return (min(above) - low) * len(least) if above else math.inf

    def advance(self, shares, active, dt, now):
        for job, share in shares:
            self.counter[self.group(job)] += share * dt

    def on_finish(self, job):
        g = self.group(job)
        self.num_present[g] -= 1
        if not self.num_present[g]:
            del self.num_present[g]


class Mlfq(Discipline):
    """Levels with quanta quantum_s * 2**level, processor sharing within the lowest occupied
    level, demotion when a quantum is used (the last level keeps it), all back to level 0
    every boost_s from the first arrival."""

    def __init__(self, quantum_s: float = 0.04, levels: int = 3, boost_s: float = 1.0, **_: float):
        self.quantum_s, self.levels, self.boost_s = quantum_s, int(levels), boost_s
        self.next_boost_s: float | None = None

    def on_arrival(self, job, active, now):
        if self.next_boost_s is None:
            self.next_boost_s = now + self.boost_s
        self._boost_until(active, now)

    def _quantum(self, job: Job) -> float:
        return self.quantum_s * 2**job.level

    def shares(self, active, now):
        low = min(j.level for j in active)
        served = [j for j in active if j.level == low]
        return [(job, 1.0 / len(served)) for job in served]

    def horizon(self, shares, active, now):
        demote = min((self._quantum(j) - j.level_used_s) / s for j, s in shares)
        return min(demote, self.next_boost_s - now)

    def advance(self, shares, active, dt, now):
        for job, share in shares:
            job.level_used_s += share * dt
            if job.level_used_s >= self._quantum(job) - TIE_S:
                job.level, job.level_used_s = min(job.level + 1, self.levels - 1), 0.0
        self._boost_until(active, now + dt)

    def _boost_until(self, active: list[Job], now: float) -> None:
        """Apply every boost due by `now` (those of an idle spell boost nobody)."""
        while self.next_boost_s <= now + TIE_S:
            for job in active:
                job.level, job.level_used_s = 0, 0.0
            self.next_boost_s += self.boost_s


def _las(**_: float) -> Discipline:
    return LeastServedGroups(lambda j: j.index, lift=False)


def _plas(**_: float) -> Discipline:
    return LeastServedGroups(lambda j: (j.spec.agent, j.spec.program), lift=False)


def _fair(**_: float) -> Discipline:
    return LeastServedGroups(lambda j: j.spec.agent, lift=True)


DISCIPLINES: dict[str, Callable[..., Discipline]] = {
    "fifo": lambda **_: Fifo(),
    "rr": lambda **_: ProcessorSharing(),
    "srpt": lambda **_: Srpt(),
    "priority": PriorityAging,
    "las": _las,
    "plas": _plas,
    "fair": _fair,
    "mlfq": Mlfq,
}
