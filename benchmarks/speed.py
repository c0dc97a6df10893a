"""The machine's speed over a run, and the ideal replay on a server that runs at it. Pure (stdlib only).

On a shared machine the decode speed swings by a third or more within seconds (measured here: a
window of 2 s runs at 1.7-4.0 ms per token on the tiny model within one 25-s run), whoever is
scheduled. A static service model then judges a policy by luck: which requests happened to run
in the slow seconds. `speed_profile` measures the speed per window of the run from every slice:
the service model's time for the slice's work (prefill on a request's first slice, its tokens at
their positions) over the slice's measured time. `SpeedWarp` turns it into a clock of work: an
ideal server that runs at the same speed at the same moment of the trace. `warped_ideal_s`
replays the policy in work time (arrivals mapped onto the work clock, the discipline unchanged,
finishes mapped back): the ideal with the same arrivals, the same sizes and the same machine.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from statistics import fmean, median

from benchmarks.ideal import JobSpec, replay
from benchmarks.ideal_disciplines import DISCIPLINES
from benchmarks.sched_workload import row_label

WINDOW_S = 2.0  # long enough for ~600 tokens of slices, short against the swings measured
MIN_BUSY_S = 0.1  # a window with less measured work than this keeps the model's speed (1.0)


def slice_model_s(model, slices: list) -> list[tuple[float, float, float]]:
    """(start, model seconds, measured seconds) per slice of one request: what `model`
    (sched_ideal.ServiceModel) gives its tokens at their positions, the prefill on the first."""
    out, done = [], 0
    for i, (_, start, end, tokens) in enumerate(slices):
        work = model.size_s(done + tokens) - (model.size_s(done) if i else 0.0)
        out.append((start, work, end - start))
        done += tokens
    return out


def speed_profile(rows: list[dict], model, offset_s: float, window_s: float = WINDOW_S) -> dict[int, float]:
    """Window index (of the trace's clock: kernel time - offset_s) -> speed (model seconds per
    measured second: 1 is the model's speed, 0.8 a machine 25% slower)."""
    sums: dict[int, list[float]] = {}
    for row in rows:
        for start, modelled, measured in slice_model_s(model, row.get("slices") or []):
            acc = sums.setdefault(int((start - offset_s) // window_s), [0.0, 0.0])
            acc[0] += modelled
            acc[1] += measured
    return {k: (m / s if s >= MIN_BUSY_S and m > 0 else 1.0) for k, (m, s) in sums.items()}


def trace_offset_s(rows: list[dict], arrivals: dict[str, float]) -> float | None:
    """Kernel time minus trace time: the median over requests of the kernel's arrival minus the
    trace's (submission lag is a few ms); None when no row names a trace request."""
    gaps = [row["arrival"] - arrivals[label] for row in rows
            if (label := row_label(row)) in arrivals and row.get("arrival") is not None]
    return median(gaps) if gaps else None


class SpeedWarp:
    """Wall (trace) time <-> work done by a server at the profile's speed, piecewise linear;
    speed 1 outside the measured windows."""

    def __init__(self, profile: dict[int, float], window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self.first = min(min(profile, default=0), 0)
        last = max(profile, default=0) + 1
        self.speeds = [max(1e-6, profile.get(k, 1.0)) for k in range(self.first, last)]
        self.cum = [0.0]
        for speed in self.speeds:
            self.cum.append(self.cum[-1] + speed * window_s)

    def work(self, t: float) -> float:
        k = int(t // self.window_s) - self.first
        if k < 0:
            return t - self.first * self.window_s
        if k >= len(self.speeds):
            return self.cum[-1] + t - (self.first + len(self.speeds)) * self.window_s
        return self.cum[k] + (t - (self.first + k) * self.window_s) * self.speeds[k]

    def wall(self, work: float) -> float:
        if work <= 0:
            return self.first * self.window_s + work
        k = bisect.bisect_right(self.cum, work) - 1
        if k >= len(self.speeds):
            return (self.first + len(self.speeds)) * self.window_s + work - self.cum[-1]
        return (self.first + k) * self.window_s + (work - self.cum[k]) / self.speeds[k]


def warped_ideal_s(specs: Sequence[JobSpec], policy: str, warp: SpeedWarp, **knobs: float) -> float | None:
    """The ideal replay's mean turnaround on a server running at `warp`'s speed (None for an
    unknown policy). Knobs in seconds of work (a quantum), or of wall time (aging, boosts: their
    clock is approximated by the work clock)."""
    make = DISCIPLINES.get(policy)
    if make is None or not specs:
        return None
    warped = [replace(s, arrival_s=warp.work(s.arrival_s)) for s in specs]
    turnaround = replay(warped, make(**knobs))
    return fmean(warp.wall(w.arrival_s + t) - s.arrival_s for w, s, t in zip(warped, specs, turnaround, strict=True))
