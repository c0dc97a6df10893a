"""`aiosim launch` with real processes: the three paper agents, JSON contract, clean shutdown,
exact-mode outputs equal across policies, and an agent SIGKILLed mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agents.launch.launcher import KernelRun

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


def _row(run: KernelRun, name: str, state: str) -> dict | None:
    return next((a for a in run.kernel.ps(all_=True) if a["name"] == name and a["state"] == state), None)


