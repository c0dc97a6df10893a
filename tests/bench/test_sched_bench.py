"""Smoke tests of `aiosim bench sched`'s workload generator and report, on synthetic data only
(no kernel, no timing assertions)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from benchmarks.sched import configure, ordered_policies
from benchmarks.sched_report import (
    evaluate_targets,
    format_table,
    overhead_delta,
    rows_with_label,
    summarize,
)
from benchmarks.sched_workload import (
    WorkloadSpec,
    arrival_rate,
    bounded_pareto,
    describe,
    draw_lengths,
    make_burst,
    make_trace,
    percentile,
)


def test_trace_is_reproducible_and_seed_dependent():
    spec = WorkloadSpec(num_requests=200, num_agents=16, seed=0)
    assert make_trace(spec, 5.0) == make_trace(spec, 5.0)
    assert make_trace(spec, 5.0) != make_trace(WorkloadSpec(200, 16, seed=1), 5.0)


def test_lengths_are_bounded_and_heavy_tailed():
    spec = WorkloadSpec(num_requests=2000, num_agents=16, seed=3)
    lengths = draw_lengths(spec)
    assert min(lengths) >= 8 and max(lengths) <= 512
    ordered = sorted(lengths)
    assert percentile(ordered, 0.5) < 32  # most requests are short
    assert max(lengths) > 256  # a few are very long
    assert describe(spec, make_trace(spec, 1.0), 1.0)["share_of_tokens_in_longest_5pct"] > 0.25


def test_bounded_pareto_stays_in_range_at_the_extremes():
    class Fixed:
        def __init__(self, u: float) -> None:
            self.u = u

        def random(self) -> float:
            return self.u

    assert bounded_pareto(Fixed(0.0), 8, 512, 1.0) == pytest.approx(8)
    assert bounded_pareto(Fixed(1.0), 8, 512, 1.0) == pytest.approx(512)


def test_arrivals_are_ordered_and_match_the_rate():
    spec = WorkloadSpec(num_requests=4000, num_agents=16, seed=0)
    trace = make_trace(spec, 10.0)
    times = [r.arrival_s for r in trace]
    assert times == sorted(times) and times[0] == 0.0
    assert times[-1] / (len(times) - 1) == pytest.approx(0.1, rel=0.1)
    assert {r.agent for r in trace} == set(range(16))
    assert len({r.label for r in trace}) == len(trace)


def test_arrival_rate_offers_the_requested_load():
    assert arrival_rate(0.8, 300.0, 40.0) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        arrival_rate(0.8, 0.0, 40.0)


def _row(rid: str, arrival: float, wait: float, run: float, tokens: int, state: str = "finished", preempt: int = 0) -> dict:
    return {"rid": rid, "agent": rid.split("/")[0], "state": state, "arrival": arrival, "finish": arrival + wait + run,
            "waiting_s": wait, "queued_s": wait, "turnaround_s": wait + run, "ttft_s": wait + 0.01,
            "preemptions": preempt, "output_tokens": tokens}


def test_summarize_synthetic_rows():
    rows = [_row("bench-0/r0", 0.0, 0.0, 1.0, 100), _row("bench-1/r1", 0.5, 0.5, 1.0, 100, preempt=2),
            _row("bench-1/r2", 1.0, 0.0, 0.0, 0, state="failed")]
    m = summarize(rows, num_submitted=4)
    assert m["num_requests"] == 2 and m["num_failed"] == 2
    assert m["mean_waiting_s"] == pytest.approx(0.25)
    assert m["mean_turnaround_s"] == pytest.approx(1.25)
    assert m["p99_turnaround_s"] == pytest.approx(1.5)
    assert m["preemptions"] == 2
    assert m["tokens_per_s"] == pytest.approx(200 / 2.0)  # first arrival 0.0 to last finish 2.0


def test_rows_with_label_separates_trace_from_burst():
    stats = {"requests": [_row("bench-0/r1", 0, 0, 1, 1), _row("bench-0/w1", 0, 0, 1, 1), _row("cli/r1", 0, 0, 1, 1)]}
    assert [r["rid"] for r in rows_with_label(stats, "r")] == ["bench-0/r1"]
    assert [r["rid"] for r in rows_with_label(stats, "w")] == ["bench-0/w1"]


def test_overhead_delta_counts_only_the_interval():
    before = {"num_plans": 10, "num_steps": 100, "busy_s": 0.3, "gap_s": 0.01, "gap_per_step_s": 0.0001}
    after = {"num_plans": 30, "num_steps": 420, "busy_s": 1.3, "gap_s": 0.042, "gap_per_step_s": 0.042 / 420}
    o = overhead_delta(before, after)
    assert o["num_steps"] == 320 and o["num_plans"] == 20
    assert o["busy_per_step_s"] == pytest.approx(1.0 / 320)
    assert o["gap_per_step_s"] == pytest.approx(0.032 / 320)
    assert o["overhead_ratio"] == pytest.approx(0.032)
    assert overhead_delta(None, None)["overhead_ratio"] is None


def _metrics(wait: float, turn: float, tps: float, sat: float, ratio: float) -> dict:
    return {"mean_waiting_s": wait, "mean_turnaround_s": turn, "tokens_per_s": tps,
            "saturated_tokens_per_s": sat, "overhead_ratio": ratio}


def test_targets_pass_and_fail():
    good = {"fifo": _metrics(1.0, 2.0, 100, 300, 0.01), "rr": _metrics(0.4, 1.6, 95, 290, 0.02),
            "mlfq": _metrics(0.3, 1.2, 99, 300, 0.03)}
    t = evaluate_targets(good)
    assert all(v["passed"] for v in t.values())
    assert t["best_preemptive_turnaround_le_0.7x_fifo"]["policy"] == "mlfq"
    bad = {"fifo": _metrics(1.0, 2.0, 100, 300, 0.01), "rr": _metrics(0.6, 1.6, 95, 250, 0.06)}
    t = evaluate_targets(bad)
    assert not any(v["passed"] for v in t.values())
    assert t["rr_tokens_per_s_ge_0.9x_fifo"]["saturated"]["ratio"] == pytest.approx(250 / 300)


def test_table_shows_every_policy_and_verdict():
    policies = {"fifo": {**_metrics(1.0, 2.0, 100, 300, 0.01), "num_requests": 3},
                "rr": {**_metrics(0.4, 1.0, 95, 290, None), "num_requests": 3}}
    workload = {"num_requests": 3, "num_agents": 2, "arrival_rate_per_s": 1.0, "load": 0.8, "mean_tokens": 10.0,
                "max_batch": 1, "quantum": 16}
    table = format_table(policies, evaluate_targets(policies), 300.0, workload)
    assert "fifo" in table and "rr" in table
    assert "PASS  rr_waiting_le_0.5x_fifo" in table
    assert "FAIL  overhead_le_5pct_of_forward" not in table  # rr's missing ratio is skipped, fifo's passes


def test_burst_and_flags():
    burst = make_burst(5, 2, 30)
    assert [r.agent for r in burst] == [0, 1, 0, 1, 0] and all(r.arrival_s == 0 for r in burst)
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--policies", "rr,fifo", "--max-batch", "4"])
    assert args.quantum == 16 and args.agents == 16 and args.max_batch == 4 and args.load == 0.8
    assert ordered_policies(args.policies) == ["fifo", "rr"]
    with pytest.raises(SystemExit):
        ordered_policies("fifo,lottery")


def test_module_import_is_light():
    code = "import sys, benchmarks.sched; bad = {'torch', 'zmq'} & set(sys.modules); assert not bad, bad"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
