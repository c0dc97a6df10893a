"""Worker processes as seen from the kernel: spawn, ready ack, heartbeats, death, respawn.

Contract: used only from the kernel main thread. A worker is "idle" when it is ready and has no
plan outstanding; the LLM service gives it the next plan (and, with lookahead, the one after
while it runs that). KV bytes never come through here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from kernel.config import KernelConfig
from kernel.loop import EventLoop, drain
from syscalls.codec import pack, unpack
from syscalls.worker_messages import TO_KERNEL, Heartbeat, PlanDone, Ready, Shutdown, parse

log = logging.getLogger("aiosim.workers")

MAX_CRASHES = 5  # deaths in a row of one worker without a finished plan before it is given up
RESPAWN_DELAY_S = (0.0, 0.5, 1.0, 2.0, 4.0)  # back-off by the number of crashes in a row
SOURCE_ROOT = str(Path(__file__).resolve().parents[2])  # so `-m workers` resolves from any cwd


@dataclass(slots=True)
class WorkerHandle:
    worker_id: int
    proc: subprocess.Popen
    started_s: float
    is_ready: bool = False
    last_seen_s: float = 0.0
    plan_ids: list[int] = field(default_factory=list)  # outstanding plans, in execution order
    model: dict = field(default_factory=dict)
    num_plans_sent: int = 0
    num_plans_answered: int = 0
    # frees sent, as (plans sent before it, keys), until a plan sent after one is answered (the
    # worker works in order): a worker killed before that may not have done them (see service)
    unconfirmed_frees: list[tuple[int, list[str]]] = field(default_factory=list)

    def plan_sent(self, plan_id: int) -> None:
        self.plan_ids.append(plan_id)
        self.num_plans_sent += 1

    def plan_answered(self) -> None:
        self.plan_ids.pop(0)
        self.num_plans_answered += 1
        self.unconfirmed_frees = [f for f in self.unconfirmed_frees if f[0] >= self.num_plans_answered]

    def free_sent(self, keys: list[str]) -> None:
        self.unconfirmed_frees.append((self.num_plans_sent, list(keys)))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def is_idle(self) -> bool:
        return self.is_ready and not self.plan_ids

    def to_wire(self) -> dict:
        return {"worker_id": self.worker_id, "pid": self.pid, "is_ready": self.is_ready,
                "plan_id": self.plan_ids[0] if self.plan_ids else None, "plan_ids": list(self.plan_ids), "model_id": self.model.get("model_id"),
                "model_dir": self.model.get("model_dir"), "fingerprint": self.model.get("fingerprint"),
                "engine": self.model.get("engine"), "batch_invariant": self.model.get("batch_invariant"),
                "kv_pool": self.model.get("kv_pool")}


@dataclass(slots=True)
class WorkerEvents:
    on_ready: Callable[[WorkerHandle], None]
    on_message: Callable[[WorkerHandle, PlanDone], None]
    on_dead: Callable[[WorkerHandle, str], None]


class WorkerPool:
    def __init__(self, config: KernelConfig, loop: EventLoop, events: WorkerEvents) -> None:
        self.config = config
        self.events = events
        self.workers: dict[int, WorkerHandle] = {}
        self.num_respawns = 0
        self.crashes: dict[int, int] = {}  # worker id -> deaths in a row without a finished plan
        self.respawning: set[int] = set()  # dead workers whose replacement is scheduled
        self.sock = loop.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.bind(config.ipc("workers.sock"))
        self.loop = loop
        loop.add_reader(self.sock, lambda s: drain(s, self._on_frames))
        loop.call_every(0.5, self._watch)

    def start(self) -> None:
        for wid in range(self.config.num_workers):
            self._spawn(wid)

    def _spawn(self, wid: int) -> None:
        cfg = self.config
        cmd = [sys.executable, "-m", "workers", "--worker-id", str(wid), "--kernel", cfg.ipc("workers.sock"),
               "--state-dir", str(cfg.state_dir), "--model", cfg.model, "--threads", str(cfg.worker_threads),
               "--on-invalid", cfg.on_invalid_snapshot, "--engine", cfg.engine,
               "--kv-pool-bytes", str(cfg.kv_pool_bytes), "--max-batch-rows", str(max(16, 4 * cfg.max_batch))]
        log_path = cfg.state_dir / f"worker-{wid}.log"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SOURCE_ROOT, os.environ.get("PYTHONPATH")]))}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        now = time.monotonic()
        self.workers[wid] = WorkerHandle(wid, proc, now, last_seen_s=now)
        log.info("worker %d starting (pid %d), log %s", wid, proc.pid, log_path)

    def send(self, wid: int, msg: dict) -> bool:
        try:
            self.sock.send_multipart([b"w%d" % wid, pack(msg)], zmq.NOBLOCK)
            return True
        except zmq.ZMQError as exc:
            log.error("send to worker %d failed: %s", wid, exc)
            return False

    @property
    def is_exhausted(self) -> bool:
        """No worker left and none being respawned: the LLM service cannot serve."""
        return not self.workers and not self.respawning

    def note_progress(self, wid: int) -> None:
        """A plan finished on `wid`: its crash streak is over."""
        self.crashes[wid] = 0

    def fail(self, w: WorkerHandle, why: str) -> None:
        """Give up on a live worker (e.g. a plan could not be sent): kill it, then as if it died."""
        if self.workers.get(w.worker_id) is w:
            w.proc.kill()
            w.proc.wait()
            self._declare_dead(w, why)

    def ready(self) -> list[WorkerHandle]:
        """Ready workers, the idle ones first."""
        return sorted((w for w in self.workers.values() if w.is_ready), key=lambda w: len(w.plan_ids))

    def _on_frames(self, frames: list[bytes]) -> None:
        ident, payload = frames[0], frames[-1]
        try:
            wid = int(ident[1:])
            msg = parse(unpack(payload), TO_KERNEL)
        except Exception as exc:
            log.error("junk from worker socket identity %r: %s", ident, exc)
            return
        w = self.workers.get(wid)
        if w is None:
            return
        w.last_seen_s = time.monotonic()
        if isinstance(msg, Ready):
            w.is_ready, w.model = True, msg.model
            log.info("worker %d ready (pid %d, model %s)", wid, w.pid, w.model.get("model_id"))
            self.events.on_ready(w)
        elif not isinstance(msg, Heartbeat):
            self.events.on_message(w, msg)

    def _watch(self) -> None:
        now = time.monotonic()
        for w in list(self.workers.values()):
            code = w.proc.poll()
            if code is not None:
                self._declare_dead(w, f"worker {w.worker_id} exited with code {code}")
            elif w.is_ready and now - w.last_seen_s > self.config.worker_timeout_s:
                w.proc.kill()
                w.proc.wait()
                self._declare_dead(w, f"worker {w.worker_id} silent for {now - w.last_seen_s:.1f} s; killed")

    def _declare_dead(self, w: WorkerHandle, why: str) -> None:
        """Bookkeeping first (its requests go back to the queue), then a respawn after a back-off
        that grows with the crashes in a row; MAX_CRASHES in a row and the worker is given up."""
        wid = w.worker_id
        log.error(why)
        del self.workers[wid]
        crashes = self.crashes[wid] = self.crashes.get(wid, 0) + 1
        if crashes <= MAX_CRASHES:
            self.respawning.add(wid)
        self.events.on_dead(w, why)
        if wid in self.respawning:
            self.loop.call_later(RESPAWN_DELAY_S[min(crashes, len(RESPAWN_DELAY_S)) - 1], lambda: self._respawn(wid))

    def _respawn(self, wid: int) -> None:
        self.respawning.discard(wid)
        if self.sock.closed or wid in self.workers:
            return
        self.num_respawns += 1
        self._spawn(wid)

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask every worker to exit, wait, then kill stragglers. Leaves no processes."""
        for w in self.workers.values():
            self.send(w.worker_id, Shutdown().to_wire())
        deadline = time.monotonic() + timeout_s
        for w in self.workers.values():
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not exit; killing", w.worker_id)
                w.proc.kill()
                w.proc.wait()
        self.workers.clear()
        self.loop.remove_reader(self.sock)
        self.sock.close(linger=0)
