"""`aiosim launch` with real processes: the three paper agents, JSON contract, clean shutdown,
exact-mode outputs equal across policies, and an agent SIGKILLed mid-run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.launch.launcher import KernelRun, run_session
from agents.launch.spec import parse_agents
from tests.cli.test_trace import check_trace_format
from tests.kernelproc import is_alive, wait_for

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["steps=2", "max_tokens=8", "min_tokens=4", "think_s=0"]
AGENT_FIELDS = ("name", "pid", "exit_code", "waiting_s", "turnaround_s", "requests", "output_tokens")
REQUEST_FIELDS = ("agent", "request_id", "waiting_s", "queued_s", "turnaround_s", "ttft_s", "preemptions",
                  "output_tokens", "output_sha256", "slices")
SUMMARY_FIELDS = ("mean_waiting_s", "mean_turnaround_s", "makespan_s", "tokens_per_s", "num_requests", "num_failed")


def launch(tmp: Path, name: str, *flags: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
    state, out = tmp / f"state-{name}", tmp / f"{name}.json"
    argv = [sys.executable, "-m", "kernel", "launch", "--agents", "math:1,narrative:1,rec:1", "--state-dir", str(state),
            "--json", str(out), "--quiet", "--max-batch", "1", *flags]
    for p in SMALL:
        argv += ["--param", p]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads(out.read_text()), state


@pytest.fixture(scope="module")
def rr_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("launch")
    return launch(tmp, "rr", "--scheduler", "rr", "--quantum", "1", "--trace", str(tmp / "trace.json"))


def test_launch_three_agents_json_contract(rr_run):
    proc, rep, _ = rr_run
    assert [a["name"] for a in rep["agents"]] == ["math-0", "narrative-0", "rec-0"]
    for a in rep["agents"]:
        assert all(k in a for k in AGENT_FIELDS), a
        assert a["exit_code"] == 0 and a["requests"] == 2 and a["output_tokens"] >= 8 and a["turnaround_s"] > 0
    assert sorted(r["request_id"] for r in rep["requests"]) == sorted(
        f"{k}-0/{n}" for k in ("math", "narrative", "rec") for n in range(2))
    for r in rep["requests"]:
        assert all(k in r for k in REQUEST_FIELDS), r
        assert re.fullmatch(r"[0-9a-f]{64}", r["output_sha256"]) and r["slices"]
    assert all(k in rep["summary"] for k in SUMMARY_FIELDS)
    assert rep["summary"]["num_requests"] == 6 and rep["summary"]["num_failed"] == 0 and rep["summary"]["num_lost"] == 0
    assert rep["kernel_pid"] > 0 and rep["worker_pids"] and rep["config"]["scheduler"] == "rr"
    assert "makespan" in proc.stdout and "narrative-0" in proc.stdout
    trace = json.loads((Path(rep["config"]["trace"])).read_text())
    check_trace_format(trace)
    assert sorted({e["name"] for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "slice"}) == \
        sorted(r["request_id"] for r in rep["requests"])


def test_launch_leaves_nothing_behind(rr_run):
    _, rep, state = rr_run
    pids = [rep["kernel_pid"], *rep["worker_pids"], *(a["pid"] for a in rep["agents"])]
    assert not [p for p in pids if is_alive(p)]
    assert not list(state.glob("*.sock")), list(state.iterdir())


def test_launch_keeps_each_agents_identity_secret(rr_run):
    _, rep, state = rr_run
    for a in rep["agents"]:
        secret_file = state / "secrets" / f"{a['name']}.secret"
        assert re.fullmatch(r"[0-9a-f]{64}\n", secret_file.read_text())
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert oct((state / "secrets").stat().st_mode & 0o777) == "0o700"


@pytest.fixture(scope="module")
def fifo_run(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("launch"), "fifo", "--scheduler", "fifo")


def digests(report: dict) -> dict[str, tuple[str, str]]:
    return {r["request_id"]: (r["output_sha256"], r["logprobs_sha256"]) for r in report["requests"]}


def test_exact_mode_outputs_equal_under_fifo_and_rr_quantum_1(rr_run, fifo_run):
    _, rr, _ = rr_run
    _, fifo, _ = fifo_run
    assert len(digests(rr)) == 6 and all(lp for _, lp in digests(rr).values())
    assert digests(fifo) == digests(rr)
    assert sum(r["preemptions"] for r in rr["requests"]) > 0  # rr with quantum 1 really interleaved


def test_batch_8_rr_quantum_2_gives_the_logprobs_of_batch_1_fifo(fifo_run, tmp_path):
    """The engine's promise at the launch level: same tokens and same float32 logprobs."""
    _, fifo, _ = fifo_run
    _, batched, _ = launch(tmp_path, "b8", "--scheduler", "rr", "--quantum", "2", "--max-batch", "8")
    assert digests(batched) == digests(fifo)
    slices = [(r["request_id"], s[1], s[2]) for r in batched["requests"] for s in r["slices"]]
    together = {(a, b) for a, s0, e0 in slices for b, s1, e1 in slices if a < b and s0 < e1 and s1 < e0}
    assert together, "no two requests were ever decoded in the same batch"


def test_agent_killed_mid_run_frees_its_requests(tmp_path):
    flags = ["--scheduler", "rr", "--quantum", "2", "--max-batch", "1", "--log-level", "WARNING"]
    run = KernelRun.start(flags, tmp_path / "state", num_workers=1)
    killed: dict[str, int] = {}

    def kill_victim(session) -> None:
        victim = next((a for a in session.agents if a.name == "narrative-0"), None)
        if victim is None or killed:
            return
        rows = run.kernel.stats()["requests"]
        if any(r["agent"] == "narrative-0" and r["state"] not in ("finished", "failed", "cancelled") for r in rows):
            victim.proc.send_signal(signal.SIGKILL)
            killed["pid"] = victim.pid

    try:
        session = run_session(run.kernel, parse_agents("math:1,narrative:1,rec:1"), params=[
            "steps=3", "max_tokens=48", "min_tokens=32", "think_s=0.05"], on_tick=kill_victim, timeout_s=120)
        codes = {a.name: a.exit_code for a in session.agents}
        assert killed and codes == {"math-0": 0, "narrative-0": -signal.SIGKILL, "rec-0": 0}
        ps = wait_for(lambda: _row(run, "narrative-0", "killed"))
        assert ps["pid"] == killed["pid"] and ps["num_active_requests"] == 0
        rows = run.kernel.stats()["requests"]
        mine = [r for r in rows if r["agent"] == "narrative-0"]
        assert mine and all(r["state"] in ("finished", "cancelled", "failed") for r in mine), mine
        assert sum(1 for r in rows if r["agent"] in ("math-0", "rec-0") and r["state"] == "finished") == 6
    finally:
        assert run.stop() == 0


def _row(run: KernelRun, name: str, state: str) -> dict | None:
    return next((a for a in run.kernel.ps(all_=True) if a["name"] == name and a["state"] == state), None)
