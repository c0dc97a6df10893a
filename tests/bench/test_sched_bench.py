"""Smoke tests of `aiosim bench sched`'s workload generator and report, on synthetic data only
(no kernel, no timing assertions)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from benchmarks import sched_ideal
from benchmarks.sched import configure, ordered_policies, parse_run, policy_runs
from benchmarks.sched_ideal import (
    ServiceModel,
    calibrated,
    fitted,
    long_run_ideal_s,
    measured_service_ideal,
    service_law,
    service_model,
    srpt_bound_s,
    yardsticks,
)
from benchmarks.sched_plot import lowest_bound, plot_sweep, sweep_series
from benchmarks.sched_report import (
    evaluate_targets,
    format_table,
    frontier_targets,
    median_run,
    overhead_delta,
    rows_with_label,
    summarize,
    verdict_line,
)
from benchmarks.sched_workload import (
    WorkloadSpec,
    arrival_rate,
    bounded_pareto,
    describe,
    draw_lengths,
    length_law,
    make_burst,
    make_trace,
    noisy_hints,
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


def test_table_shows_every_policy_andverdict_line():
    policies = {"fifo": {**_metrics(1.0, 2.0, 100, 300, 0.01), "num_requests": 3},
                "rr": {**_metrics(0.4, 1.0, 95, 290, None), "num_requests": 3}}
    workload = {"num_requests": 3, "num_agents": 2, "arrival_rate_per_s": 1.0, "load": 0.8, "mean_tokens": 10.0,
                "max_batch": 1, "quantum": 16}
    policies["fifo"]["ratio_to_ideal"] = 1.04
    targets = {**evaluate_targets(policies), **frontier_targets(policies)}
    block = {"policies": policies, "targets": targets, "workload": workload, "srpt_ideal_s": 0.5}
    table = format_table(block, 300.0)
    assert "fifo" in table and "rr" in table and "ideal SRPT (the bound) 0.500 s" in table
    assert "PASS  fifo_within_10pct_of_ideal" in table
    assert "PASS  rr_waiting_le_0.5x_fifo" in table
    assert "FAIL  overhead_le_5pct_of_forward" not in table  # rr's missing ratio is skipped, fifo's passes


def test_repeats_report_the_median_run_and_list_every_run():
    """Three runs: the one with the median ratio_to_ideal is reported whole, every run's ratios
    are kept; an even count takes the lower middle; without an ideal, the median turnaround;
    one run is reported as it is. The table lists the repeats."""
    runs = [{"mean_turnaround_s": t, "ratio_to_ideal": r, "ratio_to_ideal_measured_service": 1.0, "tag": i}
            for i, (t, r) in enumerate([(0.5, 1.3), (0.4, 0.95), (0.45, 1.05)])]
    chosen = median_run(runs)
    assert chosen["tag"] == 2 and chosen["median_repeat"] == 2 and chosen["ratio_to_ideal"] == 1.05
    assert [r["ratio_to_ideal"] for r in chosen["repeats"]] == [1.3, 0.95, 1.05] and "tag" not in chosen["repeats"][0]
    assert median_run(runs[:2])["tag"] == 1
    assert median_run([{**r, "ratio_to_ideal": None} for r in runs])["tag"] == 2
    assert median_run(runs[:1]) is runs[0]
    workload = {"num_requests": 3, "num_agents": 2, "arrival_rate_per_s": 1.0, "load": 0.8, "mean_tokens": 10.0,
                "max_batch": 1, "quantum": 4}
    table = format_table({"policies": {"fifo": chosen}, "targets": frontier_targets({"fifo": chosen}),
                          "workload": workload, "srpt_ideal_s": None}, 300.0)
    assert "fifo 1.30/1.00 0.95/1.00 1.05/1.00" in table and "PASS  fifo_within_10pct_of_ideal" in table


def test_hints_are_seeded_lognormal_and_leave_the_trace_alone():
    spec = WorkloadSpec(num_requests=2000, num_agents=4, seed=0)
    exact, noisy = make_trace(spec, 5.0), make_trace(spec, 5.0, hint_noise=1.0)
    assert [r.expected_tokens for r in exact] == [None] * 2000
    assert [(r.arrival_s, r.max_new_tokens) for r in exact] == [(r.arrival_s, r.max_new_tokens) for r in noisy]
    ratios = sorted(r.expected_tokens / r.max_new_tokens for r in noisy)
    assert 0.85 < ratios[1000] < 1.15  # median factor 1
    assert 0.1 < ratios[100] < 0.4 and 2.5 < ratios[1900] < 8  # 5th and 95th: exp(-1.645) = 0.19, exp(1.645) = 5.2
    assert noisy_hints([10, 20], 0.5, 3) == noisy_hints([10, 20], 0.5, 3) != noisy_hints([10, 20], 0.5, 4)
    slower = make_trace(spec, 2.5)
    assert slower[-1].arrival_s == pytest.approx(2 * exact[-1].arrival_s)  # same trace, time scaled


def test_length_law_is_the_law_of_the_draws():
    spec = WorkloadSpec(num_requests=20_000, num_agents=1, seed=5)
    law = length_law(spec)
    assert sum(law.values()) == pytest.approx(1.0)
    lengths = draw_lengths(spec)
    for k in (8, 9, 16, 100):
        share = sum(n == k for n in lengths) / len(lengths)
        assert share == pytest.approx(law[k], abs=4 * (law[k] / len(lengths)) ** 0.5 + 1e-4)


def test_service_model_splits_prefill_from_steps():
    def row(start: float) -> dict:  # prefill 5 ms, 2 ms a step, slices of 16, 16, 4 tokens
        return {"slices": [[0, start, start + 0.037, 16], [0, start + 0.04, start + 0.072, 16],
                           [0, start + 0.08, start + 0.088, 4]]}

    model = service_model([row(0.0), row(1.0)])
    assert model.step_s == pytest.approx(0.002) and model.prefill_s == pytest.approx(0.005)
    assert model.size_s(10) == pytest.approx(0.025)
    trace = make_trace(WorkloadSpec(num_requests=10, num_agents=1, seed=0), 1.0)
    total = sum(model.size_s(r.max_new_tokens) for r in trace)
    assert calibrated(model, trace, 2 * total) == model.scaled(2.0)
    assert calibrated(model, trace, None) == model
    assert service_model([{"slices": [[0, 0.0, 0.02, 10]]}]) == ServiceModel(0.0, 0.002)


def test_fitted_model_is_the_runs_own_least_squares_fit():
    """Rows from a known model (prefill, steps, a step's growth with the output) give it back,
    and so its ideal; any other shape keeps the run's total service with no negative term (a
    concave one drops the growth); a missing row or lengths that do not vary give None (the
    bench then scales the burst's model)."""
    spec = WorkloadSpec(num_requests=60, num_agents=3, seed=4)
    trace = make_trace(spec, 5.0)

    def rows(size, among=trace) -> list[dict]:
        return [{"rid": f"bench-{r.agent}/{r.label}", "slices": [[0, 1.0, 1.0 + size(r) / 2, 2], [0, 2.0, 2.0 + size(r) / 2, 3]]}
                for r in among]

    for model in (ServiceModel(0.006, 0.0025), ServiceModel(0.004, 0.002, 1e-6)):
        exact = fitted(trace, rows(lambda r, m=model: m.size_s(r.max_new_tokens)))
        assert exact.to_dict() == pytest.approx(model.to_dict(), rel=1e-6, abs=1e-12)
        assert yardsticks("fifo", trace, 1.0, 5.0, spec, exact, 4)["ideal_mean_turnaround_s"] == pytest.approx(
            yardsticks("fifo", trace, 1.0, 5.0, spec, model, 4)["ideal_mean_turnaround_s"])
    shapes = {"wobble": lambda r: 0.002 * r.max_new_tokens * (1.3 if r.label.endswith(("1", "4")) else 0.9),
              "concave": lambda r: 0.01 * r.max_new_tokens ** 0.5, "step": lambda r: 0.05 * (r.max_new_tokens > 40)}
    for name, size in shapes.items():
        model = fitted(trace, rows(size))
        assert min(model.to_dict().values()) >= 0 and model.step_s > 0, name
        assert sum(model.size_s(r.max_new_tokens) for r in trace) == pytest.approx(sum(size(r) for r in trace)), name
    assert fitted(trace, rows(shapes["concave"])).growth_s == 0.0
    assert fitted(trace, rows(lambda r: 0.01)[1:]) is None
    same_length = [t for t in trace if t.max_new_tokens == 8][:3]
    assert len(same_length) == 3 and fitted(same_length, rows(lambda r: 0.01, same_length)) is None


def test_measured_service_ideal_replays_each_request_s_own_service():
    """Rows whose slices add up to the model's sizes give the model's ideal; slower service, a
    larger one; a request without its row leaves the figure out."""
    spec = WorkloadSpec(num_requests=40, num_agents=2, seed=3)
    model = ServiceModel(0.004, 0.002)
    trace = make_trace(spec, 5.0)

    def rows(factor: float) -> list[dict]:
        return [{"rid": f"bench-{r.agent}/{r.label}", "slices": [[0, 0.0, factor * model.size_s(r.max_new_tokens), 1]]}
                for r in trace]

    same = measured_service_ideal("fifo", trace, rows(1.0), 0.5, model, 4)
    spec_ideal = yardsticks("fifo", trace, 0.5, 5.0, spec, model, 4)["ideal_mean_turnaround_s"]
    assert same["ideal_measured_service_s"] == pytest.approx(spec_ideal)
    assert same["ratio_to_ideal_measured_service"] == pytest.approx(0.5 / spec_ideal)
    slower = measured_service_ideal("srpt", trace, rows(2.0), 0.5, model, 4)["ideal_measured_service_s"]
    assert slower > srpt_bound_s(trace, model)
    assert measured_service_ideal("rr", trace, rows(1.0)[1:], 0.5, model, 4)["ideal_measured_service_s"] is None


def test_yardsticks_of_a_trace(monkeypatch):
    monkeypatch.setattr(sched_ideal, "LONG_RUN_REQUESTS", 20_000)
    spec = WorkloadSpec(num_requests=400, num_agents=4, seed=0)
    model = ServiceModel(0.0, 0.002)
    rate = arrival_rate(0.6, 500.0, sum(draw_lengths(spec)) / 400)
    trace = make_trace(spec, rate)
    fifo = yardsticks("fifo", trace, 1.0, rate, spec, model, 16)
    assert fifo["theory_law"].startswith("M/G/1 FCFS") and fifo["ratio_to_ideal"] == 1.0 / fifo["ideal_mean_turnaround_s"]
    bound = srpt_bound_s(trace, model)
    assert bound == pytest.approx(yardsticks("srpt", trace, None, rate, spec, model, 16)["ideal_mean_turnaround_s"])
    assert fifo["srpt_ideal_same_service_s"] == bound and fifo["ratio_to_srpt_ideal"] == 1.0 / bound
    for policy in ("fifo", "rr", "las", "mlfq", "fair", "plas", "priority"):
        assert yardsticks(policy, trace, None, rate, spec, model, 16)["ideal_mean_turnaround_s"] >= bound
    noisy = yardsticks("srpt", make_trace(spec, rate, hint_noise=1.0), None, rate, spec, model, 16)
    assert noisy["theory_law"] is None and noisy["ideal_mean_turnaround_s"] > bound
    assert yardsticks("mlfq", trace, None, rate, spec, model, 16)["ideal_long_run_s"] is None
    assert noisy["ideal_long_run_s"] is None
    assert fifo["ideal_long_run_s"] == pytest.approx(fifo["theory_mean_turnaround_s"], rel=0.1)  # load 0.6 (of the sample)
    law = service_law(spec, model)
    assert long_run_ideal_s("rr", 0.5 / law.moment(1), law, 20_000) == pytest.approx(2 * law.moment(1), rel=0.05)


def test_frontier_targets_and_runs():
    policies = {"fifo": {"ratio_to_ideal": 1.12}, "rr": {"ratio_to_ideal": 1.1}, "srpt": {"ratio_to_ideal": 1.2},
                "srpt~0.5": {"ratio_to_ideal": 1.3, "ratio_to_srpt_ideal": 1.5}}
    t = frontier_targets(policies)
    assert not t["fifo_within_10pct_of_ideal"]["passed"] and t["rr_le_1.2x_ideal_ps"]["passed"]
    assert not t["srpt_le_1.15x_ideal_srpt"]["passed"]
    assert t["srpt_hint_noise"]["per_noise"] == {"srpt~0.5": {"x_own_ideal": 1.3, "x_srpt_bound": pytest.approx(1.5)}}
    assert "INFO  srpt_hint_noise  srpt~0.5: x_own_ideal 1.30, x_srpt_bound 1.50" in verdict_line("srpt_hint_noise", t["srpt_hint_noise"])
    assert policy_runs(["fifo", "srpt"], "0.5,1.0") == ["fifo", "srpt", "srpt~0.5", "srpt~1"]
    assert policy_runs(["fifo", "rr"], "0.5") == ["fifo", "rr"]
    assert parse_run("srpt~0.5") == ("srpt", 0.5) and parse_run("las") == ("las", 0.0)


def test_sweep_plot(tmp_path):
    sweep = [{"load": load, "srpt_ideal_s": 0.1 * load,
              "policies": {"fifo": {"mean_turnaround_s": load, "ideal_mean_turnaround_s": 0.9 * load,
                                    "srpt_ideal_same_service_s": 0.5}}}
             for load in (0.5, 0.9)]
    assert sweep_series(sweep)["fifo"] == {"load": [0.5, 0.9], "measured": [0.5, 0.9], "ideal": [0.45, 0.81]}
    relative = sweep_series(sweep, "srpt_ideal_same_service_s")["fifo"]
    assert relative["measured"] == [1.0, 1.8] and relative["ideal"] == pytest.approx([0.9, 1.62])
    plot_sweep(sweep, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    batched = [{**b, "policies": {"fifo": {**b["policies"]["fifo"], "srpt_ideal_same_service_s": None}}} for b in sweep]
    plot_sweep(batched, tmp_path / "batched.png")  # no bound: no shading
    assert (tmp_path / "batched.png").stat().st_size > 0
    two = {"policies": {"a": {"srpt_ideal_same_service_s": 0.3}, "b": {"srpt_ideal_same_service_s": 0.2}}}
    assert lowest_bound(two) == 0.2 and lowest_bound(batched[0]) is None


def test_burst_and_flags():
    burst = make_burst(5, 2, 30)
    assert [r.agent for r in burst] == [0, 1, 0, 1, 0] and all(r.arrival_s == 0 for r in burst)
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--policies", "rr,fifo", "--max-batch", "4"])
    assert args.quantum == 16 and args.agents == 16 and args.max_batch == 4 and args.load == 0.8
    assert args.hint_noise == "0.5,1.0" and args.loads is None
    assert ordered_policies(args.policies) == ["fifo", "rr"]
    with pytest.raises(SystemExit):
        ordered_policies("fifo,lottery")


def test_module_import_is_light():
    code = "import sys, benchmarks.sched; bad = {'torch', 'zmq'} & set(sys.modules); assert not bad, bad"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
