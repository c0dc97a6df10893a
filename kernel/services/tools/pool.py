"""ToolPool: runs tool calls in separate runner processes, never on the kernel's event loop.

The kernel binds a ROUTER at ipc://STATE/tools.sock; each runner (a `subprocess`, see runner.py)
connects a DEALER with a fresh identity and sends `ready`. A call is queued, handed to an idle
runner, and finished exactly once by: its result, its deadline (timeout counted from submission;
the runner is killed and replaced), the runner's death (TOOL_ERROR, replaced), or a cancel.
Owner: the kernel main thread. Invariant: busy runners == calls in flight.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from kernel.config import KernelConfig
from kernel.loop import EventLoop, drain
from kernel.services.tools.calls import Runner, ToolCall, ToolOutcome
from kernel.services.tools.registry import ToolRegistry
from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError

log = logging.getLogger("aiosim.tools")
REPO_ROOT = Path(__file__).resolve().parents[3]
LIVENESS_S = 0.1
RESPAWN_DELAY_S = 1.0  # after a runner died before it ever became ready
SHUTDOWN_WAIT_S = 1.0


class ToolPool:
    def __init__(
        self,
        config: KernelConfig,
        loop: EventLoop,
        registry: ToolRegistry,
        storage_path: Path,
        after_kill: Callable[[], Any] | None = None,
    ) -> None:
        self.config, self.loop, self.registry = config, loop, registry
        self.storage_path = storage_path
        self.after_kill = after_kill  # after runners are reaped: clear their LMDB reader slots
        self.address = config.ipc("tools.sock")
        self.sock = loop.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.bind(self.address)
        loop.add_reader(self.sock, lambda s: drain(s, self._on_frames))
        self.runners: dict[bytes, Runner] = {}
        self.queue: deque[ToolCall] = deque()
        self._dying: list[subprocess.Popen] = []
        self._ids = itertools.count(1)
        self._is_closed = False
        for _ in range(config.tool_workers):
            self._spawn()
        self._liveness = loop.call_every(LIVENESS_S, self._check_runners)

    # ---- public --------------------------------------------------------------------------
    def submit(
        self,
        caller: str,
        name: str,
        args: dict | None,
        timeout_s: float | None,
        on_done: Callable[[ToolOutcome], None],
    ) -> int:
        """Validate (raises NOT_FOUND / INVALID_ARGUMENT now), queue, and return the call id."""
        if self._is_closed:
            raise SyscallError(ErrorCode.UNAVAILABLE, "tool pool closed")
        args = self.registry.get(name).validate(args)
        call = ToolCall(next(self._ids), caller, name, args, on_done)
        limit_s = min(timeout_s or self.config.tool_timeout_s, self.config.tool_max_timeout_s)
        call.timer = self.loop.call_later(limit_s, lambda: self._expire(call, limit_s))
        self.queue.append(call)
        self._dispatch()
        return call.call_id

    def cancel(self, caller: str) -> int:
        """Cancel the caller's queued and running calls (agent exit); return how many."""
        calls = [c for c in self.queue if c.caller == caller]
        calls += [r.call for r in self.runners.values() if r.call and r.call.caller == caller]
        for call in calls:
            self._finish(
                call, ToolOutcome(False, code=ErrorCode.CANCELLED.value, message="caller exited")
            )
        return len(calls)

    def pids(self) -> list[int]:
        return [r.proc.pid for r in self.runners.values()] + [p.pid for p in self._dying]

    def num_in_flight(self) -> int:
        return sum(1 for r in self.runners.values() if r.call is not None)

    def check_integrity(self) -> None:
        busy = [r for r in self.runners.values() if r.call is not None]
        for r in busy:
            assert r.call.runner is r, f"runner {r.identity!r} and its call disagree"
            assert r.is_ready, f"runner {r.identity!r} busy before ready"
        for call in self.queue:
            assert call.runner is None, f"queued call {call.call_id} has a runner"
        assert len(self.runners) <= self.config.tool_workers, "too many runners"

    def close(self) -> None:
        """Fail pending calls, stop every runner (shutdown, then kill), leave no ipc file."""
        self._is_closed = True
        self._liveness.cancel()
        for call in [*self.queue, *(r.call for r in self.runners.values() if r.call)]:
            self._finish(
                call,
                ToolOutcome(False, code=ErrorCode.UNAVAILABLE.value, message="tool pool closed"),
            )
        for r in self.runners.values():
            self._send(r, {"type": "shutdown"})
        procs = [r.proc for r in self.runners.values()] + self._dying
        self.runners.clear()
        _stop_all(procs)
        self._dying.clear()
        self.loop.remove_reader(self.sock)
        self.sock.close(linger=0)
        Path(self.address.removeprefix("ipc://")).unlink(missing_ok=True)

    # ---- internals -----------------------------------------------------------------------
    def _spawn(self) -> None:
        if self._is_closed:
            return
        identity = f"r{next(self._ids)}".encode()
        cmd = [
            sys.executable,
            "-m",
            "kernel.services.tools.runner",
            self.address,
            identity.decode(),
            str(self.storage_path),
        ]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        self.runners[identity] = Runner(identity, proc)

    def _dispatch(self) -> None:
        if self._is_closed:
            return
        for runner in list(self.runners.values()):
            if not self.queue:
                return
            if runner.is_ready and runner.call is None:
                call = self.queue.popleft()
                runner.call, call.runner = call, runner
                msg = {
                    "type": "call",
                    "call_id": call.call_id,
                    "tool": call.tool,
                    "args": call.args,
                    "caller": call.caller,
                    "max_output_bytes": self.config.tool_max_output_bytes,
                }
                if not self._send(runner, msg):
                    runner.call, call.runner = None, None
                    self.queue.appendleft(call)
                    self._replace(runner, "unreachable")

    def _send(self, runner: Runner, msg: dict) -> bool:
        try:
            self.sock.send_multipart([runner.identity, pack(msg)], zmq.NOBLOCK)
            return True
        except zmq.ZMQError:
            return False

    def _on_frames(self, frames: list[bytes]) -> None:
        runner = self.runners.get(frames[0])
        if runner is None or len(frames) != 2:
            return  # a replaced runner's late message
        try:
            msg = unpack(frames[1])
        except Exception:
            log.warning("bad message from tool runner %r", frames[0])
            return
        if msg.get("type") == "ready":
            runner.is_ready = True
        elif (
            msg.get("type") == "result"
            and runner.call
            and runner.call.call_id == msg.get("call_id")
        ):
            self._finish(runner.call, self._outcome(msg, len(frames[1])))
        self._dispatch()

    def _outcome(self, msg: dict, size: int) -> ToolOutcome:
        if not msg.get("ok"):
            return ToolOutcome(
                False, code=msg.get("code", "TOOL_ERROR"), message=msg.get("message", "")
            )
        if size > self.config.tool_max_output_bytes + 256:  # do not trust the runner's own check
            return ToolOutcome(
                False,
                code=ErrorCode.TOOL_ERROR.value,
                message=f"output exceeds {self.config.tool_max_output_bytes} bytes",
            )
        return ToolOutcome(True, result=msg.get("result"))

    def _finish(self, call: ToolCall, outcome: ToolOutcome) -> None:
        """Finish a call exactly once: stop its timer, free or kill its runner, report."""
        if call.timer is not None:
            call.timer.cancel()
        runner, call.runner = call.runner, None
        if runner is not None:
            runner.call = None
            if not outcome.ok and outcome.code in ("TIMEOUT", "CANCELLED"):
                self._replace(runner, outcome.code.lower())  # the only way to stop a tool
        elif call in self.queue:
            self.queue.remove(call)
        try:
            call.on_done(outcome)
        except Exception:
            log.exception("tool call %d: on_done failed", call.call_id)
        self._dispatch()

    def _expire(self, call: ToolCall, limit_s: float) -> None:
        call.timer = None
        self._finish(
            call,
            ToolOutcome(
                False,
                code=ErrorCode.TIMEOUT.value,
                message=f"tool {call.tool!r} took over {limit_s:g} s",
            ),
        )

    def _replace(self, runner: Runner, why: str, delay_s: float = 0.0) -> None:
        """Kill a runner (if still alive) and start a fresh one in its place."""
        log.info("replacing tool runner %r (%s)", runner.identity, why)
        self.runners.pop(runner.identity, None)
        if runner.proc.poll() is None:
            runner.proc.kill()
        self._dying.append(runner.proc)
        if delay_s:
            self.loop.call_later(delay_s, self._spawn)
        else:
            self._spawn()

    def _check_runners(self) -> None:
        """Liveness timer: a dead runner fails its call with TOOL_ERROR and is replaced."""
        num_dying = len(self._dying)
        self._dying = [p for p in self._dying if p.poll() is None]
        if len(self._dying) < num_dying and self.after_kill is not None:
            self.after_kill()  # the dead are reaped: their LMDB reader slots can be cleared
        for runner in list(self.runners.values()):
            code = runner.proc.poll()
            if code is None:
                continue
            call = runner.call
            self._replace(runner, f"exited {code}", 0.0 if runner.is_ready else RESPAWN_DELAY_S)
            if call is not None:
                self._finish(
                    call,
                    ToolOutcome(
                        False,
                        code=ErrorCode.TOOL_ERROR.value,
                        message=f"tool runner died (exit code {code})",
                    ),
                )
        self._dispatch()


def _stop_all(procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + SHUTDOWN_WAIT_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
