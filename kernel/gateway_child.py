"""`aiosim kernel --gateway HOST:PORT`: the kernel runs `aiosim gateway` as its child process.

The child dies with the kernel (PR_SET_PDEATHSIG, also on kill -9) and logs to STATE/gateway.log.
On a clean shutdown the kernel stops it first and keeps serving until it has exited, so that the
gateway's agents deregister (proc.exit) while the kernel still answers. Owner: the kernel main thread.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from kernel.config import KernelConfig
from kernel.loop import EventLoop

log = logging.getLogger("aiosim.gateway")
REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 10.0


class GatewayChild:
    def __init__(self, config: KernelConfig) -> None:
        argv = [sys.executable, "-m", "kernel", "gateway", "--address", config.address, "--listen", config.gateway,
                "--die-with-parent"]
        if config.address.startswith("tcp://"):
            argv += ["--server-key", str(config.state_dir / "curve" / "kernel.key")]
        self.log_path = config.state_dir / "gateway.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        log.info("gateway pid %d on %s (log %s)", self.proc.pid, config.gateway, self.log_path)

    def stop_then(self, loop: EventLoop) -> None:
        """SIGTERM the gateway; stop the loop once it has exited (or after STOP_TIMEOUT_S, killed)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S

        def check() -> None:
            if self.proc.poll() is None and time.monotonic() < deadline:
                return
            if self.proc.poll() is None:
                log.warning("gateway pid %d did not stop within %.0f s: killed", self.proc.pid, STOP_TIMEOUT_S)
                self.proc.kill()
            self.proc.wait()
            loop.stop()

        loop.call_every(0.05, check)
