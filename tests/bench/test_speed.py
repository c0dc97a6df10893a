"""The machine's speed over a run (benchmarks/speed.py): the work clock, the profile measured from
slices, and the ideal replay on a server at that speed. Pure, no kernel."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.ideal import JobSpec, ideal_mean_turnaround_s
from benchmarks.sched_ideal import ServiceModel
from benchmarks.speed import (
    MIN_BUSY_S,
    SpeedWarp,
    slice_model_s,
    speed_profile,
    trace_offset_s,
    warped_ideal_s,
)

profiles = st.dictionaries(st.integers(-3, 20), st.floats(0.2, 3.0), max_size=12)


@given(profiles, st.floats(-20.0, 80.0))
def test_work_clock_is_monotone_and_inverts(profile, t):
    warp = SpeedWarp(profile, 2.0)
    assert warp.wall(warp.work(t)) == pytest.approx(t, abs=1e-9)
    assert warp.work(t + 0.5) > warp.work(t)


def test_work_clock_runs_at_each_windows_speed():
    warp = SpeedWarp({0: 0.5, 1: 2.0}, 2.0)
    assert [warp.work(t) for t in (0.0, 2.0, 3.0, 4.0, 5.0)] == pytest.approx([0.0, 1.0, 3.0, 5.0, 6.0])
    assert warp.wall(1.0) == pytest.approx(2.0) and warp.wall(-1.0) == pytest.approx(-1.0)


@pytest.mark.parametrize("policy", ["fifo", "rr", "srpt", "las"])
def test_a_uniformly_slower_server_is_the_ideal_with_longer_sizes(policy):
    """Speed 0.5 everywhere the jobs run: every size takes twice as long (arrivals at 0.5/s
    stay put: the work clock is only rescaled), so the ideal is the static one with sizes x2."""
    specs = [JobSpec(0.7 * i, 0.1 + 0.03 * (i % 5)) for i in range(30)]
    warp = SpeedWarp({k: 0.5 for k in range(40)}, 2.0)
    doubled = [JobSpec(s.arrival_s, 2 * s.size_s) for s in specs]
    assert warped_ideal_s(specs, policy, warp) == pytest.approx(ideal_mean_turnaround_s(doubled, policy), rel=1e-9)
    assert warped_ideal_s(specs, policy, SpeedWarp({}, 2.0)) == pytest.approx(ideal_mean_turnaround_s(specs, policy))
    assert warped_ideal_s(specs, "no-such-policy", warp) is None


def test_profile_is_the_models_time_over_the_measured_time_per_window():
    """A request whose slices ran at half the model's speed in window 0 and at its speed in
    window 1 (prefill on the first slice, growth with the position); a window with almost no
    work keeps speed 1."""
    model = ServiceModel(prefill_s=0.05, step_s=0.02, growth_s=1e-5)
    work = [t for _, t, _ in slice_model_s(model, [[0, 0, 1, 4], [0, 0, 1, 4]])]
    assert work == pytest.approx([0.05 + 4 * 0.02 + 1e-5 * 6, 4 * 0.02 + 1e-5 * (16 + 6)])
    slices, t = [], 100.0
    for _, modelled, _ in slice_model_s(model, [[0, 0, 1, 4]] * 40):
        start = t
        t += modelled * (2.0 if t < 102.0 else 1.0)
        slices.append([0, start, t, 4])
    assert slices[-1][2] > 104.0
    rows = [{"rid": "a/r0", "arrival": 100.0, "slices": slices},
            {"rid": "b/r1", "arrival": 100.5, "slices": [[0, 107.0, 107.0 + MIN_BUSY_S / 2, 1]]}]
    profile = speed_profile(rows, model, offset_s=trace_offset_s(rows, {"r0": 0.0, "r1": 0.5}))
    assert profile[0] == pytest.approx(0.5, rel=0.05) and profile[2] == pytest.approx(1.0, rel=1e-6)
    assert profile[3] == 1.0
    assert trace_offset_s(rows, {"other": 0.0}) is None
