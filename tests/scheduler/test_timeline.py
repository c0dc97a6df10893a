"""Metric definitions on hand-made timelines (AIOS: per-agent figures are means)."""

from __future__ import annotations

import json

import pytest

from kernel.scheduler import Timeline, aggregate_by_agent


def _timeline(agent: str = "a") -> Timeline:
    tl = Timeline("a/0", agent, arrival_s=10.0)
    tl.first_scheduled_s = 11.0
    tl.record_slice(0, 11.5, 12.5, 0)  # a prefill-only slice produces no token
    tl.record_slice(0, 13.0, 14.0, 4)
    tl.preemption_s.append(12.5)
    tl.record_slice(1, 15.0, 16.0, 4)
    tl.finish_s = 16.0
    return tl


def test_metric_definitions():
    tl = _timeline()
    assert tl.waiting_s == 1.0  # arrival -> first scheduled
    assert tl.turnaround_s == 6.0  # arrival -> finish
    assert tl.ttft_s == 4.0  # arrival -> end of the first slice that produced a token
    assert tl.queued_s == 3.0  # turnaround minus 3 s inside slices
    assert (tl.preemptions, tl.num_slices, tl.num_output_tokens) == (1, 3, 8)


def test_unfinished_timeline_has_no_derived_times():
    tl = Timeline("a/0", "a", 1.0)
    assert tl.waiting_s is None and tl.turnaround_s is None and tl.queued_s is None
    assert tl.timing()["ttft_s"] is None


def test_to_dict_is_json_ready_and_holds_the_timing_map():
    d = json.loads(json.dumps(_timeline().to_dict()))
    assert d["waiting_s"] == 1.0 and d["slices"][1] == [0, 13.0, 14.0, 4]
    assert set(_timeline().timing()) <= set(d)


def test_per_agent_figures_are_means_over_requests():
    fast, slow, other = _timeline("a"), _timeline("a"), _timeline("b")
    slow.finish_s = 20.0
    agg = aggregate_by_agent([fast, slow, other])
    assert agg["a"]["turnaround_s"] == pytest.approx(8.0)
    assert agg["a"]["queued_s"] == pytest.approx(5.0)
    assert agg["b"]["waiting_s"] == 1.0
