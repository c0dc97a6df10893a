"""One agent OS process: `python -m agents KIND --index I --seed S --address A --result-file F`,
started as a fresh interpreter or forked by the launch's zygote (agents/launch/zygote.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agents.launch.spec import AgentSpec
from agents.launch.zygote import Zygote, ZygoteChild


@dataclass(slots=True)
class AgentProcess:
    """Owned by the launcher; `ended_s` is set by `poll()` when the process has exited."""

    spec: AgentSpec
    proc: subprocess.Popen | ZygoteChild
    result_file: Path
    log_file: Path
    started_s: float
    ended_s: float | None = None

    @classmethod
    def start(cls, spec: AgentSpec, address: str, seed: int, params: list[str], out_dir: Path,
              zygote: Zygote | None = None, extra_argv: list[str] | None = None) -> AgentProcess:
        result_file, log_file = out_dir / f"{spec.name}.json", out_dir / f"{spec.name}.log"
        result_file.unlink(missing_ok=True)
        argv = [spec.kind, "--index", str(spec.index), "--seed", str(seed), "--address", address,
                "--result-file", str(result_file)]
        for p in params:
            argv += ["--param", p]
        argv += extra_argv or []
        started = time.monotonic()
        if zygote is not None:
            return cls(spec, ZygoteChild(zygote, zygote.spawn(argv, str(log_file))), result_file, log_file, started)
        with open(log_file, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "agents", *argv], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        return cls(spec, proc, result_file, log_file, started)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def exit_code(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> bool:
        """True once the process has exited (records when it was first seen exited)."""
        if self.proc.poll() is None:
            return False
        if self.ended_s is None:
            self.ended_s = time.monotonic()
        return True

    def wait(self, timeout_s: float | None = None) -> int:
        code = self.proc.wait(timeout_s)
        self.poll()
        return code

    def terminate(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after grace_s (the kernel frees what a dead agent held)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.poll()

    def result(self) -> dict:
        """The agent's own result (its request log), or {} if it wrote none."""
        try:
            return json.loads(self.result_file.read_text())
        except (OSError, ValueError):
            return {}

    def log_tail(self, num_chars: int = 400) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-num_chars:]
        except OSError:
            return ""
