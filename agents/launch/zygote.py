"""The zygote: a process that imports the SDK and the agent programs once, then forks one OS
process per agent, so that agents share those pages copy-on-write and start in milliseconds.

Protocol (the launcher's `Zygote` <-> `python -m agents.launch.zygote`), JSON lines over the
zygote's stdin and stdout:
  launcher -> zygote  {"argv": [...], "log": PATH}: fork an agent running
                      `agents.runtime.main(argv)`, its stdout and stderr to PATH;
  zygote -> launcher  {"pid": N} (answers each fork, in order) and {"exit": N, "code": C} when
                      agent N exits (C as Popen.returncode: -signal if killed).
Every agent is still its own process with its own pid; it creates its ZeroMQ context and socket
after the fork (the zygote never makes one). `gc.freeze()` before forking keeps the imported
objects out of the collector, whose refcount-free traversals would otherwise unshare their pages.
The zygote dies with the launcher (parent-death signal; EOF on stdin): it then SIGTERMs the
agents it started.

Contract: the launcher side (`Zygote`, `ZygoteChild`) is used from the launcher's main thread.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import time

from kernel.lifeline import die_with_parent

COLLECT_EVERY_S = 0.005
PRELOAD = ("agents.sdk", "agents.runtime", "agents.examples._common", "zmq", "msgpack")


# ---- the zygote process ---------------------------------------------------------------------
def serve(kinds: list[str]) -> int:
    die_with_parent()
    for name in (*PRELOAD, *(f"agents.examples.{k}" for k in kinds if "." not in k and ":" not in k)):
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the wakeup fd
    children: set[int] = set()
    out = sys.stdout
    buffered = b""
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([stdin, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(children, out)
        if stdin not in ready:
            continue
        chunk = os.read(stdin, 1 << 16)
        if not chunk:  # the launcher is gone
            for pid in children:
                _signal(pid, signal.SIGTERM)
            return 0
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            cmd = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _become_agent(cmd, (stdin, wake_r, wake_w))
            children.add(pid)
            _write(out, {"pid": pid})


def _become_agent(cmd: dict, zygote_fds: tuple[int, ...]) -> None:
    """In the forked child: never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in zygote_fds:
            if fd > 2:  # stdin is replaced below
                os.close(fd)
        log = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own fds
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        from agents.runtime import main

        code = main(cmd["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reap(children: set[int], out) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _write(out, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _write(out, msg: dict) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ---- the launcher's side --------------------------------------------------------------------
class Zygote:
    """A running zygote: `spawn` forks an agent; exits arrive as lines, collected by `collect`."""

    def __init__(self, kinds: list[str], log_path: str) -> None:
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "agents.launch.zygote", *kinds], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        self._collected_s = 0.0
        self.exits: dict[int, int] = {}

    def spawn(self, argv: list[str], log: str, timeout_s: float = 30.0) -> int:
        self.proc.stdin.write((json.dumps({"argv": argv, "log": log}) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout_s
        while True:
            for msg in self._read(wait_s=max(0.0, deadline - time.monotonic())):
                if "pid" in msg:
                    return msg["pid"]
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the agent zygote did not fork (exit code {self.proc.poll()}); see its log")

    def collect(self) -> None:
        """Record the exits reported so far (never blocks; at most one read per COLLECT_EVERY_S,
        so that polling thousands of children costs one read)."""
        now = time.monotonic()
        if now - self._collected_s >= COLLECT_EVERY_S:
            self._collected_s = now
            self._read(wait_s=0.0)

    def _read(self, wait_s: float) -> list[dict]:
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], wait_s)[0]:
            return []
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        msgs = [json.loads(line) for line in lines if line]
        for msg in msgs:
            if "exit" in msg:
                self.exits[msg["exit"]] = msg["code"]
        return [m for m in msgs if "pid" in m]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ZygoteChild:
    """The part of subprocess.Popen the launcher uses, for an agent forked by a Zygote."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.zygote.collect()
            self.returncode = self.zygote.exits.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"agent pid {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            _signal(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
