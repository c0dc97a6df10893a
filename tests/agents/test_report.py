"""The launch report, table, Table-5 aggregation and plots on synthetic stats (no processes)."""

from __future__ import annotations

import argparse

import pytest

from agents.launch.compare import consistency, mode_stats, speedup
from agents.launch.report import AgentRun, build_report, by_kind, format_kinds, format_table
from agents.launch.spec import parse_agents

T0 = 100.0


def synthetic_stats() -> dict:
    def row(agent: str, n: int, arrival: float, start: float, end: float, sha: str) -> dict:
        return {"rid": f"{agent}/{n}", "agent": agent, "arrival": arrival, "first_scheduled": start, "finish": end,
                "waiting_s": start - arrival, "queued_s": start - arrival, "turnaround_s": end - arrival,
                "ttft_s": start - arrival + 0.01, "preemptions": 1, "num_slices": 2, "output_tokens": 8,
                "output_sha256": sha, "state": "finished", "slices": [[0, start, (start + end) / 2, 4], [0, (start + end) / 2, end, 4]]}

    rows = [row("math-0", 0, T0 + 0.1, T0 + 0.2, T0 + 0.6, "a"), row("math-0", 1, T0 + 1.0, T0 + 1.0, T0 + 1.4, "b"),
            row("rec-0", 0, T0 + 0.1, T0 + 0.3, T0 + 0.9, "c"),
            row("old-0", 0, T0 - 5, T0 - 4, T0 - 3, "z")]  # another session's agent: left out
    return {"policy": "rr", "config": {"quantum": 4, "max_batch": 1}, "workers": [{"pid": 11}], "requests": rows}


def runs(rec_exit: int = 0) -> list[AgentRun]:
    mine = {"requests": [{"request_id": "math-0/0", "output_sha256": "a"}, {"request_id": "math-0/1", "output_sha256": "b"}]}
    return [AgentRun("math-0", "math", 21, 0, T0, T0 + 2.0, mine, peak_rss_bytes=20 << 20),
            AgentRun("rec-0", "rec", 22, rec_exit, T0, T0 + 1.5, {"error": "RuntimeError: boom"} if rec_exit else {})]


def test_report_has_the_contract_and_agent_means():
    rep = build_report(runs(), synthetic_stats(), T0, T0 + 2.0, {"scheduler": "rr"}, kernel_pid=10)
    assert rep["kernel_pid"] == 10 and rep["worker_pids"] == [11] and rep["config"] == {"scheduler": "rr"}
    assert [r["request_id"] for r in rep["requests"]] == ["math-0/0", "math-0/1", "rec-0/0"]
    math = rep["agents"][0]
    assert math["requests"] == 2 and math["output_tokens"] == 16 and math["num_lost"] == 0
    assert math["waiting_s"] == pytest.approx((0.1 + 0.0) / 2) and math["turnaround_s"] == pytest.approx(0.45)
    assert math["agent_waiting_s"] == pytest.approx(0.2) and math["agent_turnaround_s"] == pytest.approx(2.0)
    s = rep["summary"]
    assert s["makespan_s"] == pytest.approx(2.0) and s["tokens_per_s"] == pytest.approx(12.0)
    assert s["num_requests"] == 3 and s["num_failed"] == 0 and s["num_failed_agents"] == 0
    assert s["max_agent_rss_bytes"] == 20 << 20
    for key in ("mean_waiting_s", "mean_turnaround_s", "makespan_s", "tokens_per_s", "num_requests", "num_failed"):
        assert key in s
    for key in ("agent", "request_id", "waiting_s", "queued_s", "turnaround_s", "ttft_s", "preemptions",
                "output_tokens", "output_sha256", "slices"):
        assert key in rep["requests"][0]


def test_failed_agent_and_lost_request_are_reported():
    stats = synthetic_stats()
    stats["requests"][1]["output_sha256"] = "different"  # the kernel's record disagrees with the agent's
    rep = build_report(runs(rec_exit=1), stats, T0, T0 + 2.0, {}, kernel_pid=10)
    assert rep["summary"]["num_failed_agents"] == 1 and rep["summary"]["num_lost"] == 1
    table = format_table(rep)
    assert "FAILED rec-0 (exit 1)" in table and "boom" in table and "math-0" in table


def test_plot_writes_a_png(tmp_path):
    from agents.launch.plot import plot_run

    rep = build_report(runs(), synthetic_stats(), T0, T0 + 2.0, {}, kernel_pid=10)
    path = plot_run(rep, tmp_path / "run.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_table5_aggregation_speedup_consistency_and_plot(tmp_path):
    from agents.launch.compare_plot import plot_modes

    seq = [build_report(runs(), synthetic_stats(), T0, T0 + 6.0, {}, 1) for _ in range(2)]
    conc = [build_report(runs(), synthetic_stats(), T0, T0 + end, {}, 1) for end in (2.0, 4.0)]
    modes = {"sequential": mode_stats(seq), "rr": mode_stats(conc)}
    assert modes["rr"]["makespan_s"]["mean"] == pytest.approx(3.0) and modes["rr"]["makespan_s"]["std"] > 1
    assert speedup(modes, "sequential", ["rr"])["value"] == pytest.approx(2.0)
    solo = {"math-0/0": "a", "math-0/1": "b", "rec-0/0": "c"}
    assert consistency(solo, conc)["share"] == 1.0
    assert consistency({**solo, "rec-0/0": "x"}, conc)["share"] == pytest.approx(4 / 6)
    result = {"modes": modes, "speedup": speedup(modes, "sequential", ["rr"]), "consistency": 1.0}
    assert plot_modes(result, tmp_path / "t5.png").stat().st_size > 10_000


def test_parse_agents_names_and_errors():
    assert [s.name for s in parse_agents("math:2,rec,narrative:1")] == ["math-0", "math-1", "rec-0", "narrative-0"]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_agents("math:x")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_agents("")


def many_agents_report(num_math: int = 50, num_rec: int = 30) -> dict:
    """A report of num_math + num_rec agents (one request each; two rec agents failed)."""
    rows, agent_runs = [], []
    for i, (kind, n) in enumerate([("math", k) for k in range(num_math)] + [("rec", k) for k in range(num_rec)]):
        name, t = f"{kind}-{n}", T0 + i * 0.01
        rows.append({"rid": f"{name}/0", "agent": name, "arrival": t, "first_scheduled": t + 0.1, "finish": t + 0.5,
                     "waiting_s": 0.1, "queued_s": 0.1, "turnaround_s": 0.5, "ttft_s": 0.2, "preemptions": 0,
                     "num_slices": 1, "output_tokens": 4, "output_sha256": "x", "state": "finished",
                     "slices": [[0, t + 0.1, t + 0.5, 4]]})
        failed = kind == "rec" and n < 2
        agent_runs.append(AgentRun(name, kind, 1000 + i, 1 if failed else 0, t, t + 1.0,
                                   {"error": "boom"} if failed else {"requests": [{"request_id": f"{name}/0", "output_sha256": "x"}]}))
    return build_report(agent_runs, {"policy": "rr", "config": {}, "workers": [], "requests": rows}, T0, T0 + 2.0, {}, 1)


def test_thousands_of_agents_are_summarised_by_kind():
    rep = many_agents_report()
    kinds = by_kind(rep["agents"])
    assert kinds["math"] == {"agents": 50, "failed_agents": 0, "requests": 50, "output_tokens": 200,
                             "waiting_s": pytest.approx(0.1), "turnaround_s": pytest.approx(0.5), "elapsed_s": pytest.approx(1.0)}
    assert kinds["rec"]["agents"] == 30 and kinds["rec"]["failed_agents"] == 2
    table = format_kinds(rep).splitlines()
    assert [line.split()[0] for line in table[2:4]] == ["math", "rec"] and len(table) == 8  # 2 kinds, summary, 2 failures
    assert len(format_kinds(rep).splitlines()) < len(format_table(rep).splitlines())


def test_plot_of_many_agents_goes_by_kind(tmp_path):
    from agents.launch.plot import PER_AGENT_MAX, plot_run

    rep = many_agents_report()
    assert len(rep["agents"]) > PER_AGENT_MAX
    path = plot_run(rep, tmp_path / "kinds.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
