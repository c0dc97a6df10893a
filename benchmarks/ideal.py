"""The ideal replay: an exact, zero-overhead discrete-event model of a policy on one server.

Pure (stdlib only). Each job keeps the trace's arrival and gets a true service time (its tokens
over the measured capacity). The model is fluid and work-conserving at batch 1: between two
events every discipline gives each present job a constant share of the server (the shares sum
to 1), so the replay is exact, not sampled. Events are arrivals, completions and a
discipline's own breakpoints (tied service levels meeting, an mlfq demotion or boost).
Round robin's ideal is processor sharing (the limit of a vanishing quantum); fair, plas and
las share equally among the tied least-served, which is what rotating equal ranks tends to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from benchmarks.ideal_disciplines import DISCIPLINES, Discipline

TOL_S = 1e-12  # service levels closer than this are equal; remaining work below it is done


@dataclass(slots=True, frozen=True)
class JobSpec:
    arrival_s: float
    size_s: float  # true service time at the full server
    hint_s: float | None = None  # srpt's estimate of size_s (None: exact)
    agent: Hashable = 0
    program: Hashable | None = None  # plas groups by program, else by agent
    priority: int = 0


@dataclass(slots=True)
class Job:
    """A job inside one replay (mutable)."""

    index: int
    spec: JobSpec
    attained_s: float = 0.0
    finish_s: float | None = None
    level: int = 0  # mlfq
    level_used_s: float = 0.0  # mlfq

    @property
    def remaining_s(self) -> float:
        return self.spec.size_s - self.attained_s


def replay(specs: Sequence[JobSpec], discipline: Discipline) -> list[float]:
    """Turnaround (finish - arrival) of every job, in the order of `specs`."""
    jobs = sorted((Job(i, s) for i, s in enumerate(specs)), key=lambda j: (j.spec.arrival_s, j.index))
    active: list[Job] = []
    now, nxt = 0.0, 0
    while nxt < len(jobs) or active:
        if not active:
            now = max(now, jobs[nxt].spec.arrival_s)
        while nxt < len(jobs) and jobs[nxt].spec.arrival_s <= now:
            active.append(jobs[nxt])
            discipline.on_arrival(jobs[nxt], active, now)
            nxt += 1
        shares = discipline.shares(active, now)
        next_arrival = jobs[nxt].spec.arrival_s - now if nxt < len(jobs) else math.inf
        dt = min(next_arrival, discipline.horizon(shares, active, now),
                 *(job.remaining_s / share for job, share in shares))
        for job, share in shares:
            job.attained_s += share * dt
        discipline.advance(shares, active, dt, now)
        now += dt
        active = _retire(active, now, discipline)
    return [j.finish_s - j.spec.arrival_s for j in sorted(jobs, key=lambda j: j.index)]


def _retire(active: list[Job], now: float, discipline: Discipline) -> list[Job]:
    still = []
    for job in active:
        if job.remaining_s <= TOL_S * max(1.0, job.spec.size_s):
            job.finish_s = now
            discipline.on_finish(job)
        else:
            still.append(job)
    return still


def ideal_mean_turnaround_s(specs: Sequence[JobSpec], policy: str, **knobs: float) -> float | None:
    """The ideal replay's mean turnaround for a kernel policy name (None for an unknown one);
    knobs are the policy's settings in seconds (quantum_s, aging_s, boost_s, levels)."""
    make: Callable[..., Discipline] | None = DISCIPLINES.get(policy)
    if make is None or not specs:
        return None
    turnaround = replay(specs, make(**knobs))
    return sum(turnaround) / len(turnaround)
