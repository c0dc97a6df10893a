"""Real processes for `aiosim bench sched` and `bench programs`: a kernel per policy, and a
driver that replays a trace (or runs chains of calls) through one SDK Client per agent.

The driver is one thread polling every client's socket with zmq; it sleeps in the poll until
the next arrival is due, so it never spins on the two cores it shares with kernel and worker.
It records how late each submission left (`submit_lag_s`) to show it did not delay arrivals.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import zmq

from agents.sdk import Client, KernelError, Pending
from benchmarks.programs_workload import Program
from benchmarks.sched_workload import TraceRequest
from kernel.flags import kernel_argv


def kernel_flags(args: argparse.Namespace, policy: str) -> list[str]:
    """`aiosim kernel` flags for one policy of the benchmark (no tool runners needed)."""
    kargs = argparse.Namespace(**{**vars(args), "scheduler": policy, "log_level": "WARNING",
                                  "preempt": "swap", "worker_threads": 1})
    return [*kernel_argv(kargs), "--tool-workers", "0"]


@dataclass(slots=True)
class ReplayResult:
    wall_s: float
    num_ok: int = 0
    failures: list[str] = field(default_factory=list)
    submit_lag_s: list[float] = field(default_factory=list)


class Driver:
    """One registered Client per agent (bench-<i>); replays traces, several in flight each."""

    def __init__(self, address: str, num_agents: int, prefix: str = "bench") -> None:
        self.clients = [Client(address, name=f"{prefix}-{i}", timeout_s=30.0) for i in range(num_agents)]
        self.poller = zmq.Poller()
        self.by_socket = {}
        for client in self.clients:
            sock = client.socket
            self.poller.register(sock, zmq.POLLIN)
            self.by_socket[sock] = client

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def replay(self, trace: list[TraceRequest], timeout_s: float) -> ReplayResult:
        """Submit each request at its arrival offset; return when every reply is in."""
        in_flight: list[Pending] = []
        result = ReplayResult(wall_s=0.0)
        t0 = time.monotonic()
        deadline = t0 + (trace[-1].arrival_s if trace else 0.0) + timeout_s
        i = 0
        while i < len(trace) or in_flight:
            now = time.monotonic()
            while i < len(trace) and t0 + trace[i].arrival_s <= now:
                in_flight.append(self._submit(trace[i]))
                result.submit_lag_s.append(time.monotonic() - t0 - trace[i].arrival_s)
                i += 1
            if now > deadline:
                raise RuntimeError(f"replay timed out with {len(in_flight)} requests in flight")
            wait_s = (t0 + trace[i].arrival_s - time.monotonic()) if i < len(trace) else 1.0
            self._receive(max(0, math.ceil(wait_s * 1000)))
            in_flight = self._collect(in_flight, result)
        result.wall_s = time.monotonic() - t0
        return result

    def run_programs(self, programs: list[Program], timeout_s: float) -> ReplayResult:
        """Start each program at its arrival offset and submit its next call as soon as the
        previous one is answered; return when every program is done (a failure ends it)."""
        result = ReplayResult(wall_s=0.0)
        t0 = time.monotonic()
        deadline = t0 + (programs[-1].arrival_s if programs else 0.0) + timeout_s
        running: dict[int, tuple[Pending, int]] = {}  # position in programs -> (call in flight, its step)
        i = 0
        while i < len(programs) or running:
            now = time.monotonic()
            while i < len(programs) and t0 + programs[i].arrival_s <= now:
                running[i] = (self._call(programs[i], 0), 0)
                result.submit_lag_s.append(time.monotonic() - t0 - programs[i].arrival_s)
                i += 1
            if now > deadline:
                raise RuntimeError(f"programs timed out with {len(running)} running")
            wait_s = (t0 + programs[i].arrival_s - time.monotonic()) if i < len(programs) else 1.0
            self._receive(max(0, math.ceil(wait_s * 1000)))
            for pos, (pending, step) in list(running.items()):
                if pending.is_done:
                    del running[pos]
                    if self._settle(pending, result) and step + 1 < len(programs[pos].call_tokens):
                        running[pos] = (self._call(programs[pos], step + 1), step + 1)
        result.wall_s = time.monotonic() - t0
        return result

    def _call(self, program: Program, step: int) -> Pending:
        return self.clients[program.agent].submit(
            "llm.generate", prompt=f"program {program.index} step {step}: plan the next move",
            max_new_tokens=program.call_tokens[step], request_id=program.label(step), priority=program.priority,
            program_id=program.program_id,
        )

    def _submit(self, req: TraceRequest) -> Pending:
        return self.clients[req.agent].submit(
            "llm.generate", prompt=req.prompt, max_new_tokens=req.max_new_tokens, request_id=req.label,
            priority=req.priority, expected_tokens=req.expected_tokens,
        )

    def _receive(self, timeout_ms: int) -> None:
        for sock, _ in self.poller.poll(timeout_ms):
            self.by_socket[sock].pump()

    @classmethod
    def _collect(cls, in_flight: list[Pending], result: ReplayResult) -> list[Pending]:
        still = []
        for pending in in_flight:
            if pending.is_done:
                cls._settle(pending, result)
            else:
                still.append(pending)
        return still

    @staticmethod
    def _settle(pending: Pending, result: ReplayResult) -> bool:
        """Count a finished call; False if it failed."""
        try:
            pending.result(timeout_s=0)
        except KernelError as err:
            result.failures.append(f"{pending.call}: {err.code}: {err.message}")
            return False
        result.num_ok += 1
        return True
