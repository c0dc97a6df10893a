"""Hundreds of agent processes, forked from the launch zygote: every request finishes with the
output its agent saw, nothing is left running, and the zygote reports exits as Popen would."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agents.launch.launcher import KernelRun, run_session
from agents.launch.report import agent_runs, build_report
from agents.launch.spec import parse_agents
from agents.launch.zygote import Zygote, ZygoteChild
from tests.kernelproc import child_pids, is_alive, wait_for


def test_three_hundred_agent_processes_lose_nothing_and_leave_nothing(tmp_path):
    run = KernelRun.start(["--scheduler", "rr", "--quantum", "4", "--max-batch", "32", "--log-level", "WARNING"],
                          tmp_path / "state", 1)
    try:
        session = run_session(run.kernel, parse_agents("math:150,rec:75,narrative:75"), timeout_s=300,
                              params=["steps=1", "max_tokens=4", "min_tokens=2", "think_s=0"])
        stats = run.kernel.stats()
        report = build_report(agent_runs(session), stats, session.started_s, session.ended_s, {}, run.kernel.pid)
        live = [a["name"] for a in run.kernel.ps(all_=False)]
    finally:
        assert run.stop() == 0
    s = report["summary"]
    assert len({a.pid for a in session.agents}) == 300 and all(a.exit_code == 0 for a in session.agents)
    assert s["num_failed_agents"] == 0 and s["num_failed"] == 0 and s["num_lost"] == 0
    seen = sum(len(a.result().get("requests") or []) for a in session.agents)  # what the agents themselves received
    assert seen >= 300 and s["num_requests"] == seen == stats["totals"]["finished"]
    assert live == ["operator"], "every agent deregistered"
    assert not any(is_alive(a.pid) for a in session.agents)
    assert not [p for p in child_pids(os.getpid()) if "zygote" in Path(f"/proc/{p}/cmdline").read_text()]


def test_zygote_children_report_exit_codes_and_write_their_logs(tmp_path):
    zygote = Zygote(["idle"], str(tmp_path / "zygote.log"))
    try:
        bad = ZygoteChild(zygote, zygote.spawn(["no-such-program", "--address", "ipc:///nowhere"], str(tmp_path / "bad.log")))
        idle = ZygoteChild(zygote, zygote.spawn(["idle", "--address", "ipc:///nowhere", "--timeout-s", "30"],
                                                str(tmp_path / "idle.log")))
        assert bad.wait(30) == 1 and "no agent program 'no-such-program'" in (tmp_path / "bad.log").read_text()
        assert idle.poll() is None and idle.pid in child_pids(zygote.proc.pid)
        idle.send_signal(signal.SIGKILL)
        assert idle.wait(30) == -signal.SIGKILL
    finally:
        zygote.close()
    wait_for(lambda: zygote.proc.poll() is not None, what="the zygote to exit")
