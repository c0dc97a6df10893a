"""Metric definitions on hand-made timelines (AIOS: per-agent figures are means)."""

from __future__ import annotations

import json

import pytest

from kernel.llm.metrics import History
from kernel.scheduler import Timeline


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


def test_per_agent_figures_are_means_over_finished_requests_and_rows_are_bounded():
    fast, slow, other, failed = _timeline("a"), _timeline("a"), _timeline("b"), _timeline("a")
    slow.finish_s = 20.0
    history = History(max_rows=3)
    for tl, state in ((fast, "finished"), (slow, "finished"), (other, "finished"), (failed, "failed")):
        history.add({"rid": tl.rid, "agent": tl.agent, "state": state, "output_tokens": 8}, tl)
    wire = history.to_wire(None, active=[{"rid": "b/9", "agent": "b", "state": "running"}])
    assert wire["agents"]["a"]["mean_turnaround_s"] == pytest.approx(8.0)
    assert wire["agents"]["a"]["mean_queued_s"] == pytest.approx(5.0)
    assert wire["agents"]["a"]["num_requests"] == 2 and wire["agents"]["a"]["output_tokens"] == 16
    assert wire["agents"]["b"]["mean_waiting_s"] == 1.0
    assert [r["state"] for r in wire["requests"]] == ["finished", "finished", "failed", "running"]  # newest 3 + active
    assert wire["totals"] == {"finished": 3, "failed": 1, "cancelled": 0, "output_tokens": 24}
    assert set(history.to_wire("b", [], with_rows=False)["agents"]) == {"b"}
    assert history.to_wire(None, [], with_rows=False)["requests"] == []
