"""The `aiosim launch` flow as a library call: kernel in a fresh state dir, agents, report, stop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agents.launch.launcher import KernelRun, run_session
from agents.launch.progress import Progress
from agents.launch.report import agent_runs, build_report
from agents.launch.spec import AgentSpec


def launch(specs: list[AgentSpec], kernel_flags: list[str], state_dir: Path | None, num_workers: int,
           seed: int = 0, params: list[str] | None = None, config: dict | None = None, keep_state: bool = False,
           show_progress: bool = True, ready_timeout_s: float = 120.0, timeout_s: float = 900.0,
           trace: Path | None = None) -> dict:
    """Run the agents concurrently against a new kernel; returns the report (kernel stopped, always).
    With `trace`, the run's timelines are also written there as a Chrome trace (kernel.trace)."""
    print(f"[launch] starting kernel ({' '.join(kernel_flags)})", file=sys.stderr)
    run = KernelRun.start(kernel_flags, state_dir, num_workers, ready_timeout_s)
    report: dict = {}
    try:
        progress = Progress(len(specs), time.monotonic(), enabled=show_progress)
        print(f"[launch] kernel {run.kernel.pid} ready at {run.kernel.address}; starting {len(specs)} agents",
              file=sys.stderr)
        session = run_session(run.kernel, specs, seed, params, progress=progress, timeout_s=timeout_s)
        progress.close()
        runs = agent_runs(session)
        stats = run.kernel.stats()
        report = build_report(runs, stats, session.started_s, session.ended_s, config or {}, run.kernel.pid)
        if trace is not None:
            from kernel.trace import write_trace

            trace.parent.mkdir(parents=True, exist_ok=True)
            print(f"wrote {trace} ({write_trace(stats, trace)} trace events)", file=sys.stderr)
        report["state_dir"] = str(run.state_dir)
    finally:
        is_failed = not report or report["summary"]["num_failed_agents"] > 0
        code = run.stop(keep_state=keep_state or is_failed)
        if report:
            report["kernel_exit_code"] = code
        if is_failed or keep_state:
            print(f"[launch] state dir kept: {run.state_dir}", file=sys.stderr)
    return report
