"""The yardsticks beside every measurement of `aiosim bench sched`. Pure (stdlib only).

For a trace and a policy: the ideal replay (benchmarks/ideal.py) of the same arrivals with
service times from a ServiceModel (prefill + tokens x step, plus a step's growth
with what is already decoded) measured in the same run, and the
M/G/1 closed form (benchmarks/theory.py) from the trace's arrival rate and exact length law.
The first policy's burst of equal-length requests at batch 1 gives the model that sizes the
arrival rate: per-token time from the slices after a request's first, prefill as the mean
excess of its first slice. Each run's ideal then uses the model `fitted` to that run's own
requests: least squares of each request's worker time (the sum of its slices) on its length.
The burst alone misleads twice: the machine's speed drifts between runs (other load, clocks;
near saturation a few percent of speed moves the queue a lot), and a burst of one length cannot
split prefill from steps the way a trace does (measured: a trace's 8-16-token requests cost
0.91x the burst model scaled to the run's busy time, its 256-512-token ones 1.12x, which shifts
the heavy tail that dominates FIFO's waiting). The fit keeps the run's total service (its busy
time: the kernel's gaps between plans are not in it, so the ideal has no scheduling overhead at
all), and is a function of the length only: each request's own measured service is the separate
diagnostic `measured_service_ideal`. Within a run the machine's speed still swings (by a
third within seconds here): the bench runs both ideals on a server at the run's measured speed
over time (benchmarks/speed.py) and keeps the constant-speed ones as `ratio_to_ideal_static`.
Where a closed form exists, the ideal replay of
LONG_RUN_REQUESTS drawn from the same law at the same rate sits beside it (`ideal_long_run_s`):
it converges to the closed form, a check of the replay itself, while a trace of a few hundred
requests from an empty queue need not.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from itertools import accumulate
from statistics import fmean

from benchmarks.ideal import JobSpec, ideal_mean_turnaround_s
from benchmarks.sched_workload import TraceRequest, WorkloadSpec, length_law, row_label
from benchmarks.speed import SpeedWarp, warped_ideal_s
from benchmarks.theory import ServiceLaw, theory_mean_turnaround_s
from kernel.scheduler import SchedConfig

LONG_RUN_REQUESTS = 100_000


@dataclass(slots=True, frozen=True)
class ServiceModel:
    prefill_s: float  # a request's prefill (its prompt is a few words)
    step_s: float  # one decode step at batch 1, at the start of the output
    growth_s: float = 0.0  # what each token already decoded adds to a step (attention reads it)

    def size_s(self, tokens: int) -> float:
        return self.prefill_s + tokens * self.step_s + self.growth_s * tokens * (tokens - 1) / 2

    def scaled(self, factor: float) -> ServiceModel:
        return ServiceModel(self.prefill_s * factor, self.step_s * factor, self.growth_s * factor)

    def to_dict(self) -> dict:
        return asdict(self)


def service_model(rows: list[dict]) -> ServiceModel:
    """From sched.stats rows of a batch-1 burst (each row's slices: [worker, start, end, tokens])."""
    firsts = [r["slices"][0] for r in rows if r.get("slices")]
    later = [s for r in rows for s in (r.get("slices") or [])[1:] if s[3] > 0]
    if not later:  # one slice each: no split between prefill and steps
        return ServiceModel(0.0, sum(s[2] - s[1] for s in firsts) / max(1, sum(s[3] for s in firsts)))
    step_s = sum(s[2] - s[1] for s in later) / sum(s[3] for s in later)
    prefill_s = max(0.0, fmean(s[2] - s[1] - s[3] * step_s for s in firsts))
    return ServiceModel(prefill_s, step_s)


def calibrated(model: ServiceModel, trace: list[TraceRequest], busy_s: float | None) -> ServiceModel:
    """`model` scaled so the trace's service adds up to busy_s (unchanged without one)."""
    total = sum(model.size_s(r.max_new_tokens) for r in trace)
    return model.scaled(busy_s / total) if busy_s and total else model


def request_service_s(rows: list[dict]) -> dict[str, float]:
    """Each trace request's worker time (the sum of its slices), by its label."""
    return {row_label(row): sum(s[2] - s[1] for s in row.get("slices") or [])
            for row in rows}


def fitted(trace: list[TraceRequest], rows: list[dict]) -> ServiceModel | None:
    """The run's own service model: ordinary least squares of each request's worker time on its
    length n, as prefill + n x step + n(n-1)/2 x growth (a step's attention grows with what is
    already decoded). Each fit with an intercept keeps the run's total service. A coefficient
    below zero (a noisy run) drops the growth term, then the prefill (the run's mean time per
    token). None when a request has no row (it failed) or the lengths do not vary."""
    spent = request_service_s(rows)
    if len(trace) < 2 or any(r.label not in spent for r in trace):
        return None
    ns, ys = [r.max_new_tokens for r in trace], [spent[r.label] for r in trace]
    if len(set(ns)) < 2:
        return None
    for terms in ((lambda n: 1.0, lambda n: float(n), lambda n: n * (n - 1) / 2), (lambda n: 1.0, lambda n: float(n))):
        coefs = least_squares([[f(n) for f in terms] for n in ns], ys)
        if coefs is not None and min(coefs) >= 0 and coefs[1] > 0:
            return ServiceModel(*coefs)
    return ServiceModel(0.0, sum(ys) / sum(ns))


def least_squares(xs: list[list[float]], ys: list[float]) -> list[float] | None:
    """The coefficients minimizing the squared error of xs @ c against ys (normal equations,
    Gaussian elimination with partial pivoting); None when the columns are dependent."""
    k = len(xs[0])
    a = [[sum(x[i] * x[j] for x in xs) for j in range(k)] + [sum(x[i] * y for x, y in zip(xs, ys, strict=True))]
         for i in range(k)]
    norms = [a[i][i] for i in range(k)]
    for col in range(k):
        pivot = max(range(col, k), key=lambda row: abs(a[row][col]))
        if abs(a[pivot][col]) <= 1e-9 * norms[col]:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for row in range(k):
            if row != col:
                factor = a[row][col] / a[col][col]
                a[row] = [v - factor * w for v, w in zip(a[row], a[col], strict=True)]
    return [a[i][k] / a[i][i] for i in range(k)]


def job_specs(trace: list[TraceRequest], model: ServiceModel) -> list[JobSpec]:
    return [JobSpec(r.arrival_s, model.size_s(r.max_new_tokens),
                    None if r.expected_tokens is None else model.size_s(r.expected_tokens),
                    agent=r.agent, priority=r.priority) for r in trace]


def ideal_knobs(quantum: int, model: ServiceModel) -> dict[str, float]:
    """The kernel's policy settings in seconds (the bench keeps the kernel's defaults)."""
    defaults = SchedConfig()
    return {"quantum_s": quantum * model.step_s, "levels": defaults.mlfq_levels,
            "boost_s": defaults.mlfq_boost_s, "aging_s": defaults.priority_aging_s}


def service_law(spec: WorkloadSpec, model: ServiceModel) -> ServiceLaw:
    return ServiceLaw.from_weights({model.size_s(k): p for k, p in length_law(spec).items()})


def yardsticks(policy: str, trace: list[TraceRequest], measured_s: float | None, rate_per_s: float,
               spec: WorkloadSpec, model: ServiceModel, quantum: int, warp: SpeedWarp | None = None) -> dict:
    """ideal_mean_turnaround_s, ratio_to_ideal, theory_mean_turnaround_s, theory_law for one
    policy's measured mean turnaround, and ratio_to_srpt_ideal: against the ideal SRPT replay
    with the same service model (what no policy can beat on that run). With `warp` (the run's
    measured speed over time, benchmarks/speed.py) both ideals run on a server at that speed,
    and the static ones (the model's constant speed) are kept as ideal_static_mean_turnaround_s
    and ratio_to_ideal_static. Noisy hints have no closed form."""
    specs, knobs = job_specs(trace, model), ideal_knobs(quantum, model)
    static = ideal_mean_turnaround_s(specs, policy, **knobs)
    ideal = static if warp is None else warped_ideal_s(specs, policy, warp, **knobs)
    bound = srpt_bound_s(trace, model, warp)
    is_hinted = any(r.expected_tokens is not None for r in trace)
    service = service_law(spec, model)
    theory, law = (None, None) if is_hinted else theory_mean_turnaround_s(policy, rate_per_s, service)
    long_run = long_run_ideal_s(policy, rate_per_s, service, LONG_RUN_REQUESTS) if theory is not None else None
    return {"ideal_mean_turnaround_s": ideal, "ratio_to_ideal": _ratio(measured_s, ideal),
            "ideal_static_mean_turnaround_s": static, "ratio_to_ideal_static": _ratio(measured_s, static),
            "srpt_ideal_same_service_s": bound, "ratio_to_srpt_ideal": _ratio(measured_s, bound),
            "theory_mean_turnaround_s": theory, "theory_law": law, "ideal_long_run_s": long_run}


def measured_service_ideal(policy: str, trace: list[TraceRequest], rows: list[dict], measured_s: float | None,
                           model: ServiceModel, quantum: int) -> dict:
    """A diagnostic beside the yardstick: the ideal replay with each request's own measured
    service (the sum of its slices: at batch 1, the worker's time on it) in place of its tokens
    at the run's mean speed. What the measured policy still loses against it is the kernel's
    (gaps, slice granularity, late revokes), not the machine's speed drifting within the run nor
    long requests costing more per token. A noisy hint keeps its ratio to the request's length."""
    spent = request_service_s(rows)
    if not trace or any(r.label not in spent for r in trace):
        return {"ideal_measured_service_s": None, "ratio_to_ideal_measured_service": None}
    specs = [JobSpec(r.arrival_s, spent[r.label],
                     None if r.expected_tokens is None else spent[r.label] * r.expected_tokens / r.max_new_tokens,
                     agent=r.agent, priority=r.priority) for r in trace]
    ideal = ideal_mean_turnaround_s(specs, policy, **ideal_knobs(quantum, model))
    return {"ideal_measured_service_s": ideal, "ratio_to_ideal_measured_service": _ratio(measured_s, ideal)}


def long_run_ideal_s(policy: str, rate_per_s: float, law: ServiceLaw, num_requests: int, seed: int = 0) -> float | None:
    """The ideal replay of num_requests Poisson arrivals at rate_per_s with sizes drawn from `law`."""
    rng = random.Random(f"long-run-{seed}")
    sizes = rng.choices(law.sizes, cum_weights=list(accumulate(law.probs)), k=num_requests)
    arrivals = accumulate(rng.expovariate(rate_per_s) for _ in range(num_requests))
    return ideal_mean_turnaround_s([JobSpec(t, s) for t, s in zip(arrivals, sizes, strict=True)], policy)


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def srpt_bound_s(trace: list[TraceRequest], model: ServiceModel, warp: SpeedWarp | None = None) -> float | None:
    """The ideal SRPT replay with exact lengths (on a server at `warp`'s speed, if given): the
    least mean turnaround any policy can reach."""
    exact = [JobSpec(r.arrival_s, model.size_s(r.max_new_tokens)) for r in trace]
    return ideal_mean_turnaround_s(exact, "srpt") if warp is None else warped_ideal_s(exact, "srpt", warp)
