"""The ideal replay (benchmarks/ideal.py) against hand-computed traces, its own invariants, and
the closed forms of benchmarks/theory.py on many jobs (within sampling error)."""

from __future__ import annotations

import math
import random
from statistics import fmean, stdev

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.ideal import JobSpec, ideal_mean_turnaround_s, replay
from benchmarks.ideal_disciplines import DISCIPLINES
from benchmarks.theory import (
    ServiceLaw,
    fcfs,
    foreground_background,
    processor_sharing,
    srpt,
    theory_mean_turnaround_s,
)
from kernel.scheduler import POLICIES

TINY = [JobSpec(0.0, 3.0), JobSpec(1.0, 1.0)]  # one agent, one program


@pytest.mark.parametrize(("policy", "expected"), [
    ("fifo", [3.0, 3.0]),  # A 0-3, B 3-4
    ("rr", [4.0, 2.0]),  # A alone 0-1, shared 1-3 (B done), A alone 3-4
    ("srpt", [4.0, 1.0]),  # B (1) preempts A (2 left)
    ("las", [4.0, 1.0]),  # B (0 served) runs until it has A's 1, and is done
    ("plas", [4.0, 2.0]),  # one program: shared like rr
    ("fair", [4.0, 2.0]),
    ("priority", [3.0, 3.0]),  # equal priorities: by arrival
    ("mlfq", [4.0, 1.5]),  # quantum 0.5: A to level 1 at 0.5; B level 0 1-1.5; both level 1, shared
])
def test_tiny_trace_by_hand(policy, expected):
    knobs = {"quantum_s": 0.5, "boost_s": 100.0}
    assert replay(TINY, DISCIPLINES[policy](**knobs)) == pytest.approx(expected)


def test_every_kernel_policy_has_an_ideal():
    assert set(DISCIPLINES) == set(POLICIES)


def test_hints_and_priorities_and_programs_steer_the_replay():
    specs = [JobSpec(0.0, 3.0, hint_s=0.5), JobSpec(1.0, 1.0)]
    assert replay(specs, DISCIPLINES["srpt"]()) == pytest.approx([3.0, 3.0])  # A past its hint: 0 left
    specs = [JobSpec(0.0, 3.0, priority=2), JobSpec(1.0, 1.0)]
    assert replay(specs, DISCIPLINES["priority"](aging_s=1.0)) == pytest.approx([4.0, 1.0])  # deadline 2 > 1
    assert replay(specs, DISCIPLINES["priority"](aging_s=0.25)) == pytest.approx([3.0, 3.0])  # 0.5 < 1
    specs = [JobSpec(0.0, 3.0, agent="a"), JobSpec(1.0, 1.0, agent="a", program="p")]
    assert replay(specs, DISCIPLINES["plas"]()) == pytest.approx([4.0, 1.0])  # a new program: 0 served


def test_fair_lifts_a_newly_active_agent():
    specs = [JobSpec(0.0, 4.0, agent="a"), JobSpec(2.0, 2.0, agent="b")]
    assert replay(specs, DISCIPLINES["fair"]())[1] == pytest.approx(4.0)  # lifted to a's 2: shares
    assert replay(specs, DISCIPLINES["plas"]())[1] == pytest.approx(2.0)  # plas: b (0) runs alone


JOBS = st.lists(
    st.tuples(st.floats(0.0, 5.0), st.floats(0.01, 3.0), st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(JOBS)
def test_work_conserving_and_srpt_is_optimal(rows):
    specs = [JobSpec(t, s, agent=a, priority=p) for t, s, a, p in rows]
    means = {}
    last = set()
    for name, make in DISCIPLINES.items():
        turnaround = replay(specs, make(quantum_s=0.2, boost_s=1.0))
        assert all(t >= s.size_s - 1e-9 for t, s in zip(turnaround, specs, strict=True))
        last.add(round(max(t + s.arrival_s for t, s in zip(turnaround, specs, strict=True)), 6))
        means[name] = fmean(turnaround)
    assert len(last) == 1, f"makespans differ: {last}"  # every discipline keeps the server busy
    assert means["srpt"] <= min(means.values()) + 1e-9


def _trace(num_jobs: int, rate: float, draw, seed: int) -> list[JobSpec]:
    rng = random.Random(seed)
    t, specs = 0.0, []
    for i in range(num_jobs):
        t += rng.expovariate(rate)
        specs.append(JobSpec(t, draw(rng), agent=i))
    return specs


def _assert_within_sampling_error(turnaround: list[float], expected: float, num_batches: int = 20) -> None:
    size = len(turnaround) // num_batches
    batches = [fmean(turnaround[i * size:(i + 1) * size]) for i in range(num_batches)]
    error = stdev(batches) / math.sqrt(num_batches)
    assert abs(fmean(turnaround) - expected) <= 4 * error + 0.01 * expected, (fmean(turnaround), expected, error)


def _exponential_law(step: float = 0.005, num: int = 4000) -> ServiceLaw:
    return ServiceLaw.from_weights({(i + 0.5) * step: math.exp(-i * step) - math.exp(-(i + 1) * step) for i in range(num)})


def test_closed_forms_of_the_exponential_law_agree():
    law, rate = _exponential_law(), 0.7
    exact = 1 / (1 - rate)  # M/M/1: FCFS, PS and FB all give 1 / (mu - lambda)
    for formula in (fcfs, processor_sharing, foreground_background):
        assert formula(rate, law) == pytest.approx(exact, rel=1e-3)
    assert srpt(rate, law) < exact
    assert theory_mean_turnaround_s("mlfq", rate, law) == (None, None)
    assert theory_mean_turnaround_s("fifo", 1.5, law)[0] is None  # unstable


def _check_convergence(law: ServiceLaw, draw, load: float, seed: int) -> None:
    """fifo, rr and srpt at `load`; las at half of it: its mean turnaround weighs each busy period
    by about its square, so at high load a sample of 20k jobs is skewed beyond its batch means."""
    for policy, rate in (("fifo", load), ("rr", load), ("srpt", load), ("las", load / 2)):
        rate /= law.moment(1)
        specs = _trace(20_000, rate, draw, seed)
        expected, _ = theory_mean_turnaround_s(policy, rate, law)
        _assert_within_sampling_error(replay(specs, DISCIPLINES[policy]()), expected)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(load=st.floats(0.3, 0.7), seed=st.integers(0, 1000))
def test_replay_converges_to_mm1(load, seed):
    _check_convergence(_exponential_law(), lambda rng: rng.expovariate(1.0), load, seed)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(load=st.floats(0.3, 0.7), seed=st.integers(0, 1000))
def test_replay_converges_to_md1(load, seed):
    _check_convergence(ServiceLaw((1.0,), (1.0,)), lambda rng: 1.0, load, seed)
    specs = _trace(5_000, load, lambda rng: 1.0, seed)
    assert ideal_mean_turnaround_s(specs, "srpt") == pytest.approx(ideal_mean_turnaround_s(specs, "fifo"))
