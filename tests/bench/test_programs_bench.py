"""bench programs: the seeded chains of calls, per-program turnaround from kernel rows, the
plas target and the table (synthetic data only, no kernel)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.programs import configure, format_table, program_targets
from benchmarks.programs_workload import (
    ProgramSpec,
    describe_programs,
    draw_programs,
    make_programs,
    mean_program_tokens,
    program_turnarounds,
    summarize_programs,
)


def test_programs_are_seeded_heavy_tailed_chains():
    spec = ProgramSpec(num_programs=3000, num_agents=8, seed=0)
    assert draw_programs(spec) == draw_programs(spec) != draw_programs(ProgramSpec(3000, 8, seed=1))
    calls = sorted(len(p) for p in draw_programs(spec))
    assert calls[0] == 1 and calls[-1] == 16 and calls[1500] <= 3  # most programs short, a few long
    assert all(8 <= n <= 256 for p in draw_programs(spec) for n in p)
    programs = make_programs(spec, 2.0)
    assert [p.call_tokens for p in programs] == draw_programs(spec)  # the rate moves arrivals only
    assert programs[-1].arrival_s / (len(programs) - 1) == pytest.approx(0.5, rel=0.1)
    assert make_programs(spec, 4.0)[-1].arrival_s == pytest.approx(programs[-1].arrival_s / 2)
    assert programs[5].label(2) == "p5.2" and programs[5].program_id == "p5"
    assert mean_program_tokens(spec) == pytest.approx(sum(sum(p.call_tokens) for p in programs) / 3000)
    assert describe_programs(spec, programs, 2.0)["num_calls"] == sum(calls)


def _row(agent: int, label: str, arrival: float, finish: float, state: str = "finished") -> dict:
    return {"rid": f"bench-{agent}/{label}", "arrival": arrival, "finish": finish, "state": state}


def test_program_turnaround_is_first_arrival_to_last_finish():
    programs = make_programs(ProgramSpec(num_programs=3, num_agents=2, seed=0), 1.0)
    rows = []
    for p in programs:
        for j in range(len(p.call_tokens)):
            rows.append(_row(p.agent, p.label(j), 10 * p.index + j, 10 * p.index + j + 0.5))
    rows[-1]["state"] = "failed"  # the last program's last call
    turnaround = program_turnarounds(rows, programs)
    assert set(turnaround) == {0, 1}
    assert turnaround[0] == pytest.approx(len(programs[0].call_tokens) - 0.5)
    summary = summarize_programs(turnaround, programs)
    assert summary["num_programs"] == 2 and summary["num_failed"] == 1
    assert summary["mean_program_turnaround_s"] == pytest.approx(sum(turnaround.values()) / 2)


def test_plas_target_and_table():
    results = {"plas": {"mean_program_turnaround_s": 1.0}, "rr": {"mean_program_turnaround_s": 1.5},
               "fair": {"mean_program_turnaround_s": 0.9}}
    target = program_targets(results)["plas_mean_program_turnaround_lt_rr_and_fair"]
    assert not target["passed"] and target["ratio_to_rr"] == pytest.approx(2 / 3)
    results["fair"]["mean_program_turnaround_s"] = 1.2
    targets = program_targets(results)
    assert targets["plas_mean_program_turnaround_lt_rr_and_fair"]["passed"]
    assert program_targets({"plas": results["plas"]}) == {}
    workload = {"num_programs": 3, "num_calls": 7, "num_agents": 2, "arrival_rate_per_s": 1.0, "load": 0.8,
                "mean_program_tokens": 50.0}
    table = format_table(results, targets, workload)
    assert "PASS  plas_mean_program_turnaround_lt_rr_and_fair" in table and "rr" in table


def test_flags():
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([])
    assert args.programs == 60 and args.load == 0.8 and args.quantum == 16 and "plas" in args.policies
