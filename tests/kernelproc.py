"""A real kernel process for integration tests: start, wait for ready, inspect, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agents.sdk import Client, KernelError

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


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


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
    def __init__(self, state_dir: Path, *flags: str, workers: int = 1):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.address = f"ipc://{self.state_dir / 'kernel.sock'}"
        self.num_workers = workers
        self.stderr_path = self.state_dir / "kernel.stderr"
        cmd = [sys.executable, "-m", "kernel", "kernel", "--state-dir", str(self.state_dir),
               "--workers", str(workers), "--debug", *flags]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        self.pid = self.proc.pid

    def wait_ready(self, timeout_s: float = 90.0) -> KernelProc:
        deadline = time.monotonic() + timeout_s
        probe = Client(self.address, timeout_s=1.0)
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"kernel exited {self.proc.returncode}: {self.stderr_path.read_text()[-2000:]}")
                try:
                    stats = probe.sched_stats()
                except KernelError:
                    continue
                if sum(w["is_ready"] for w in stats["workers"]) >= self.num_workers:
                    return self
                time.sleep(0.1)
        finally:
            probe.close()
        raise TimeoutError(f"kernel not ready in {timeout_s} s: {self.stderr_path.read_text()[-2000:]}")

    def client(self, name: str | None = None, **kw) -> Client:
        return Client(self.address, name=name, **kw)

    def worker_pids(self) -> list[int]:
        with self.client() as c:
            return [w["pid"] for w in c.sched_stats()["workers"]]

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code. Children are collected first for checks."""
        if self.proc.poll() is None:
            self.children = child_pids(self.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def leftovers(self) -> list[str]:
        """What a clean shutdown must not leave: live children, socket files, the pid file."""
        left = [f"pid {p}" for p in getattr(self, "children", []) if is_alive(p)]
        left += [p.name for p in self.state_dir.glob("*.sock")]
        left += ["kernel.pid"] if (self.state_dir / "kernel.pid").exists() else []
        return left


def run_cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernel", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)
