"""Run agent processes against a live kernel (concurrently or one at a time), and the whole
`aiosim launch` flow: state dir, kernel, agents, progress, report, shutdown.

Contract: every process started here is stopped here, on every path (normal end, a failed agent,
Ctrl-C): agents first, then the kernel.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agents.launch.agentproc import AgentProcess
from agents.launch.kernelproc import KernelProcess, LaunchError
from agents.launch.progress import Progress
from agents.launch.spec import AgentSpec
from agents.launch.zygote import Zygote

POLL_S = 0.05
RSS_EVERY_S = 0.5
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(slots=True)
class Session:
    """One run of a set of agents against a kernel, timed on CLOCK_MONOTONIC (shared with the kernel)."""

    agents: list[AgentProcess] = field(default_factory=list)
    started_s: float = 0.0
    ended_s: float = 0.0
    sequential: bool = False
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)  # agent name -> peak sampled RSS
    last_rss_s: float = 0.0

    def sample_rss(self) -> None:
        """Sample live agents' RSS (every RSS_EVERY_S) from /proc/PID/statm."""
        now = time.monotonic()
        if now - self.last_rss_s < RSS_EVERY_S:
            return
        self.last_rss_s = now
        for a in self.agents:
            rss = _rss_bytes(a.pid) if a.proc.poll() is None else 0
            self.peak_rss_bytes[a.name] = max(self.peak_rss_bytes.get(a.name, 0), rss)

    @property
    def makespan_s(self) -> float:
        """First agent start to last agent exit."""
        return self.ended_s - self.started_s

    @property
    def num_failed(self) -> int:
        return sum(1 for a in self.agents if a.exit_code != 0)


OnTick = Callable[[Session], None]


def run_session(kernel: KernelProcess, specs: list[AgentSpec], seed: int = 0, params: list[str] | None = None,
                sequential: bool = False, progress: Progress | None = None, on_tick: OnTick | None = None,
                timeout_s: float = 600.0, zygote: bool = True, agent_argv: list[str] | None = None) -> Session:
    """Start one process per spec (all at once, or each after the previous exits) and wait for all.
    With `zygote`, agents are forked from a zygote that imported the agent code once (see
    zygote.py); else each is a fresh interpreter. `agent_argv`: more `aiosim agent run` flags for
    every agent (e.g. --start-file). On any exception (Ctrl-C included) the agents
    still running are terminated."""
    out_dir = kernel.state_dir / "agents"
    out_dir.mkdir(exist_ok=True)
    forker = Zygote(sorted({s.kind for s in specs}), str(out_dir / "zygote.log")) if zygote else None
    session = Session(started_s=time.monotonic(), sequential=sequential)
    queue = list(specs)
    deadline = session.started_s + timeout_s
    try:
        while queue or not _all_exited(session.agents):
            if queue and (not sequential or _all_exited(session.agents)):
                batch = queue if not sequential else queue[:1]
                for spec in batch:
                    session.agents.append(AgentProcess.start(spec, kernel.address, seed, params or [], out_dir, forker,
                                                             agent_argv))
                    _tick(kernel, session, progress, on_tick)
                queue = [] if not sequential else queue[1:]
            _tick(kernel, session, progress, on_tick)
            if time.monotonic() > deadline:
                raise LaunchError(f"agents still running after {timeout_s:.0f} s")
            time.sleep(POLL_S)
    finally:
        for a in session.agents:
            a.terminate()
        if forker is not None:
            forker.close()
    session.ended_s = max((a.ended_s or time.monotonic() for a in session.agents), default=time.monotonic())
    return session


def _all_exited(agents: list[AgentProcess]) -> bool:
    """Poll every agent (no short-circuit, so each exit time is recorded when it happens)."""
    return all([a.poll() for a in agents])


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def _tick(kernel: KernelProcess, session: Session, progress: Progress | None, on_tick: OnTick | None) -> None:
    session.sample_rss()
    if on_tick is not None:
        on_tick(session)
    if progress is not None and progress.is_due():
        done = [a for a in session.agents if a.poll()]
        progress.update(len(done), sum(1 for a in done if a.exit_code != 0), kernel.stats(with_rows=False))


@dataclass(slots=True)
class KernelRun:
    """A kernel in a state dir made for one launch; the temp dir is removed unless kept."""

    kernel: KernelProcess
    state_dir: Path
    is_temp: bool

    @classmethod
    def start(cls, kernel_flags: list[str], state_dir: Path | None, num_workers: int,
              ready_timeout_s: float = 120.0) -> KernelRun:
        is_temp = state_dir is None
        path = Path(tempfile.mkdtemp(prefix="aiosim-launch-")) if state_dir is None else state_dir
        if not is_temp and (path / "kernel.sock").exists():
            raise LaunchError(f"{path} already has a kernel.sock: is a kernel running there? Use another --state-dir")
        kernel = KernelProcess.start(kernel_flags, path)
        run = cls(kernel, path, is_temp)
        try:
            kernel.wait_ready(num_workers, ready_timeout_s)
        except BaseException:
            run.stop(keep_state=True)
            raise
        return run

    def stop(self, keep_state: bool = False) -> int:
        """Stop the kernel; remove a temp state dir unless keep_state. Returns the kernel's exit code."""
        code = self.kernel.stop()
        if self.is_temp and not keep_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return code
