"""The kernel as a child process of the launcher: start, wait until ready, query, stop.

Contract: the launcher owns this process (its own session, so a terminal Ctrl-C reaches it only
through `stop()`); `stop()` is the one shutdown path: SIGTERM, wait, SIGKILL the group if stuck.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agents.sdk import Client, KernelError

READY_POLL_S = 0.1


class LaunchError(RuntimeError):
    """The kernel or an agent could not be started (the message points at a log)."""


@dataclass(slots=True)
class KernelProcess:
    state_dir: Path
    address: str
    proc: subprocess.Popen
    client: Client  # unregistered: sched.stats and proc.ps need no token

    @classmethod
    def start(cls, kernel_flags: list[str], state_dir: Path) -> KernelProcess:
        """Start `python -m kernel kernel FLAGS --state-dir DIR --address ipc://DIR/kernel.sock`."""
        state_dir.mkdir(parents=True, exist_ok=True)
        address = f"ipc://{state_dir.resolve() / 'kernel.sock'}"
        argv = [sys.executable, "-m", "kernel", "kernel", *kernel_flags, "--state-dir", str(state_dir), "--address", address]
        with open(state_dir / "kernel.out", "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return cls(state_dir, address, proc, Client(address, timeout_s=30.0))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_hint(self) -> str:
        return f"see {self.state_dir / 'kernel.log'} and {self.state_dir / 'kernel.out'}"

    def wait_ready(self, num_workers: int, timeout_s: float = 120.0) -> dict:
        """Until proc.ping answers and sched.stats lists num_workers ready workers; returns the stats."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LaunchError(f"kernel exited with code {self.proc.returncode} while starting; {self.log_hint()}")
            stats = self._try_stats()
            if stats is not None and sum(1 for w in stats["workers"] if w.get("is_ready")) >= num_workers:
                return stats
            time.sleep(READY_POLL_S)
        raise LaunchError(f"kernel not ready after {timeout_s:.0f} s (workers still loading?); {self.log_hint()}")

    def _try_stats(self) -> dict | None:
        try:
            self.client.proc_ping(_timeout_s=1.0)
            return self.client.sched_stats(_timeout_s=2.0)
        except KernelError:
            return None

    def stats(self, with_rows: bool = True) -> dict:
        return self.client.sched_stats(requests=with_rows)

    def ps(self, all_: bool = True) -> list[dict]:
        return self.client.proc_ps(all=all_)["agents"]

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait; if stuck, SIGKILL its whole process group. Returns the exit code."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid)
                self.proc.wait()
        return self.proc.returncode


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
