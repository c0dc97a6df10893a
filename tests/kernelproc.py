"""A real kernel process for integration tests: start, wait for ready, inspect, stop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agents.launch.kernelproc import KernelProcess
from agents.sdk import Client
from kernel.procs import is_pid_alive as is_alive  # a zombie counts as gone

ROOT = Path(__file__).resolve().parents[1]


def child_pids(pid: int) -> list[int]:
    """Direct children of pid (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def wait_for(predicate, timeout_s: float = 15.0, what: str = "condition"):
    """Poll predicate until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class KernelProc:
    """A real kernel for tests: the launcher's KernelProcess (start, ready, one stop path) run
    with --debug (integrity checks when idle), plus what tests check after it stops."""

    def __init__(self, state_dir: Path, *flags: str, workers: int = 1):
        self.state_dir = Path(state_dir)
        self.num_workers = workers
        self.kernel = KernelProcess.start([*flags, "--workers", str(workers), "--debug"], self.state_dir)
        self.proc, self.pid, self.address = self.kernel.proc, self.kernel.pid, self.kernel.address
        self.children: list[int] = []

    def wait_ready(self, timeout_s: float = 90.0) -> KernelProc:
        self.kernel.wait_ready(self.num_workers, timeout_s)
        return self

    def client(self, name: str | None = None, **kw) -> Client:
        return Client(self.address, name=name, **kw)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait (children are noted first, for leftovers()); returns the exit code."""
        if self.proc.poll() is None:
            self.children = child_pids(self.pid)
        return self.kernel.stop(timeout_s)

    def stop_cleanly(self) -> None:
        """Stop; assert exit code 0, nothing left behind and no traceback in kernel.log."""
        code = self.stop()
        assert code == 0, f"kernel exited {code}"
        assert not self.leftovers(), f"left behind: {self.leftovers()}"
        assert "Traceback" not in (self.state_dir / "kernel.log").read_text(), "kernel logged a traceback"

    def leftovers(self) -> list[str]:
        """What a clean shutdown must not leave: live children, socket files, the pid file."""
        left = [f"pid {p}" for p in self.children if is_alive(p)]
        left += [p.name for p in self.state_dir.glob("*.sock")]
        left += ["kernel.pid"] if (self.state_dir / "kernel.pid").exists() else []
        return left


def run_cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernel", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)
