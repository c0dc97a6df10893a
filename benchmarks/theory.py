"""Closed forms for the mean turnaround of an M/G/1 queue, per kernel policy. Pure (stdlib).

The law of service times is discrete (the bench's lengths are whole tokens): sizes s_1 < ... <
s_K with probabilities p_k, arrivals Poisson at `rate`. Ties between equal sizes go first come
first served under SRPT and are shared under FB, which is what the ideal replay does. These
are long-run (steady state) expectations: a short trace from an empty queue can sit far from
them; the ideal replay of many jobs converges to them (tests/bench/test_ideal.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate


@dataclass(slots=True, frozen=True)
class ServiceLaw:
    sizes: tuple[float, ...]  # ascending, distinct, seconds
    probs: tuple[float, ...]  # summing to 1

    @classmethod
    def from_weights(cls, weights: dict[float, float]) -> ServiceLaw:
        total = sum(weights.values())
        sizes = tuple(sorted(s for s, w in weights.items() if w > 0))
        return cls(sizes, tuple(weights[s] / total for s in sizes))

    def moment(self, k: int) -> float:
        return sum(p * s**k for s, p in zip(self.sizes, self.probs, strict=True))


def fcfs(rate: float, law: ServiceLaw) -> float:
    """Pollaczek-Khinchine: E[S] + rate E[S^2] / (2 (1 - rho))."""
    rho = rate * law.moment(1)
    return law.moment(1) + rate * law.moment(2) / (2 * (1 - rho))


def processor_sharing(rate: float, law: ServiceLaw) -> float:
    """E[S] / (1 - rho), whatever the law."""
    return law.moment(1) / (1 - rate * law.moment(1))


def foreground_background(rate: float, law: ServiceLaw) -> float:
    """FB (least attained service): a job of size x sees jobs truncated at x,
    T(x) = x / (1 - rho_x) + rate E[min(S, x)^2] / (2 (1 - rho_x)^2), rho_x = rate E[min(S, x)]."""
    total = 0.0
    below1 = below2 = 0.0  # sums over sizes < x of p s and p s^2
    tail = 1.0  # P(S >= x)
    for x, p in zip(law.sizes, law.probs, strict=True):
        m1, m2 = below1 + x * tail, below2 + x * x * tail
        rho_x = rate * m1
        total += p * (x / (1 - rho_x) + rate * m2 / (2 * (1 - rho_x) ** 2))
        below1, below2, tail = below1 + p * x, below2 + p * x * x, tail - p
    return total


def srpt(rate: float, law: ServiceLaw) -> float:
    """Schrage-Miller for a discrete law: a job of size x waits
    rate (E[S^2; S <= x] + x^2 P(S > x)) / (2 (1 - rho(<x)) (1 - rho(<=x))), then is
    resident for the integral over t in (0, x] of dt / (1 - rho(<t)), rho(<t) = rate E[S; S < t]."""
    loads = [0.0, *accumulate(rate * p * s for s, p in zip(law.sizes, law.probs, strict=True))]
    total = residence = below2 = 0.0
    tail, previous = 1.0, 0.0
    for k, (x, p) in enumerate(zip(law.sizes, law.probs, strict=True)):
        residence += (x - previous) / (1 - loads[k])
        below2, tail = below2 + p * x * x, tail - p
        waiting = rate * (below2 + x * x * max(tail, 0.0)) / (2 * (1 - loads[k]) * (1 - loads[k + 1]))
        total += p * (waiting + residence)
        previous = x
    return total


THEORY: dict[str, tuple[str, Callable[[float, ServiceLaw], float]]] = {
    "fifo": ("M/G/1 FCFS (Pollaczek-Khinchine)", fcfs),
    "rr": ("M/G/1 PS", processor_sharing),
    "las": ("M/G/1 FB (foreground-background)", foreground_background),
    "srpt": ("M/G/1 SRPT (Schrage-Miller)", srpt),
}


def theory_mean_turnaround_s(policy: str, rate: float, law: ServiceLaw) -> tuple[float | None, str | None]:
    """(mean turnaround, the law's name) for a policy with a closed form, else (None, None);
    (None, name) when the queue is unstable (rho >= 1)."""
    entry = THEORY.get(policy)
    if entry is None:
        return None, None
    name, formula = entry
    if rate * law.moment(1) >= 1:
        return None, name
    return formula(rate, law), name
