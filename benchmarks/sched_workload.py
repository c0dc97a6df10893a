"""The seeded workload of `aiosim bench sched`: a trace replayed identically for every policy.

Pure (stdlib only). Output lengths follow a bounded Pareto law on [min_tokens, max_tokens]
(most requests short, a few long: the case where fifo suffers head-of-line blocking); each
request goes to an agent drawn uniformly; arrivals are Poisson at `rate_per_s` requests/s, drawn
as unit exponentials scaled by the rate, so the traces of one seed at different loads differ
only in time scale. With hint_noise sigma > 0 each request carries an expected_tokens hint for
srpt: its length times a seeded lognormal factor exp(sigma Z), Z standard normal (median 1).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

PROMPT_WORDS = ("plan", "summarize", "check", "draft", "compare", "list", "answer", "sort")


@dataclass(slots=True, frozen=True)
class TraceRequest:
    index: int
    agent: int  # client bench-<agent>
    arrival_s: float  # offset from the start of the replay
    max_new_tokens: int
    priority: int  # used by the priority policy only (lower runs first)
    prompt: str
    label: str  # request_id label; the kernel's rid is bench-<agent>/<label>
    expected_tokens: int | None = None  # srpt's hint; None: max_new_tokens (exact)


@dataclass(slots=True, frozen=True)
class WorkloadSpec:
    num_requests: int
    num_agents: int
    seed: int
    min_tokens: int = 8
    max_tokens: int = 512
    pareto_alpha: float = 1.0
    num_priorities: int = 4


def bounded_pareto(rng: random.Random, low: float, high: float, alpha: float) -> float:
    """Inverse-CDF draw from the Pareto law with shape alpha truncated to [low, high]."""
    u = rng.random()
    ratio = (low / high) ** alpha
    return low / (1.0 - u * (1.0 - ratio)) ** (1.0 / alpha)


def draw_lengths(spec: WorkloadSpec) -> list[int]:
    """Output lengths (max_new_tokens), seeded; the same spec gives the same list."""
    rng = random.Random(f"lengths-{spec.seed}")
    draws = (bounded_pareto(rng, spec.min_tokens, spec.max_tokens, spec.pareto_alpha) for _ in range(spec.num_requests))
    return [min(spec.max_tokens, max(spec.min_tokens, round(x))) for x in draws]


def arrival_rate(load: float, capacity_tokens_per_s: float, mean_tokens: float) -> float:
    """Requests/s so that offered tokens/s = load x capacity."""
    if capacity_tokens_per_s <= 0 or mean_tokens <= 0:
        raise ValueError("capacity and mean length must be > 0")
    return load * capacity_tokens_per_s / mean_tokens


def make_trace(spec: WorkloadSpec, rate_per_s: float, hint_noise: float = 0.0, prefix: str = "r") -> list[TraceRequest]:
    """The trace: Poisson arrivals at rate_per_s over the seeded lengths, agents and priorities
    (labels <prefix><i>), with hints perturbed by hint_noise (0: no hint sent)."""
    lengths = draw_lengths(spec)
    hints = noisy_hints(lengths, hint_noise, spec.seed)
    rng = random.Random(f"arrivals-{spec.seed}")
    t = 0.0
    trace = []
    for i, length in enumerate(lengths):
        if i:
            t += rng.expovariate(1.0) / rate_per_s
        agent = rng.randrange(spec.num_agents)
        words = " ".join(rng.choice(PROMPT_WORDS) for _ in range(4))
        trace.append(TraceRequest(i, agent, t, length, agent % spec.num_priorities, f"task {i}: {words}",
                                  f"{prefix}{i}", hints[i]))
    return trace


def noisy_hints(lengths: list[int], sigma: float, seed: int) -> list[int | None]:
    """Each length times exp(sigma Z), rounded, in [1, 8192]; all None when sigma is 0."""
    if sigma <= 0:
        return [None] * len(lengths)
    rng = random.Random(f"hints-{seed}-{sigma}")
    return [min(8192, max(1, round(n * math.exp(sigma * rng.gauss(0.0, 1.0))))) for n in lengths]


def length_law(spec: WorkloadSpec) -> dict[int, float]:
    """The exact law of draw_lengths: P(length = k), the bounded Pareto rounded to whole tokens."""
    low, high, alpha = spec.min_tokens, spec.max_tokens, spec.pareto_alpha

    def cdf(x: float) -> float:
        x = min(max(x, low), high)
        return (1 - (low / x) ** alpha) / (1 - (low / high) ** alpha)

    return {k: cdf(k + 0.5) - cdf(k - 0.5) for k in range(low, high + 1)}


def row_label(row: dict) -> str:
    """A sched.stats row's request label (its rid is '<agent>/<label>'): the trace's name for it."""
    return str(row.get("rid", "")).partition("/")[2]


def make_burst(num_requests: int, num_agents: int, max_new_tokens: int, prefix: str = "w") -> list[TraceRequest]:
    """Equal-length requests all arriving at once (labels <prefix><i>): saturates the worker."""
    return [TraceRequest(i, i % num_agents, 0.0, max_new_tokens, 0, f"burst {i}: plan the work", f"{prefix}{i}")
            for i in range(num_requests)]


def describe(spec: WorkloadSpec, trace: list[TraceRequest], rate_per_s: float) -> dict:
    """JSON-ready summary of the workload (the trace itself is reproducible from the spec)."""
    lengths = sorted(r.max_new_tokens for r in trace)
    total = sum(lengths)
    return {
        **asdict(spec),
        "length_law": "bounded_pareto",
        "arrival_rate_per_s": rate_per_s,
        "duration_s": trace[-1].arrival_s if trace else 0.0,
        "total_tokens": total,
        "mean_tokens": total / len(lengths) if lengths else 0.0,
        "median_tokens": lengths[len(lengths) // 2] if lengths else 0,
        "p99_tokens": percentile(lengths, 0.99),
        "max_tokens_drawn": lengths[-1] if lengths else 0,
        "share_of_tokens_in_longest_5pct": _tail_share(lengths, 0.05),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _tail_share(sorted_values: list[int], fraction: float) -> float:
    total = sum(sorted_values)
    if not total:
        return 0.0
    n = max(1, math.ceil(fraction * len(sorted_values)))
    return sum(sorted_values[-n:]) / total
