"""KernelLink: the worker's DEALER sockets to the kernel's ROUTER (ipc://STATE/workers.sock).

The main thread owns the `w<id>` socket (ready, plans in, plan_done out). Heartbeats go out
every heartbeat_s from a daemon thread on a socket of its own (`h<id>`), so a long prefill,
swap or decode slice never silences a healthy worker; the same thread exits the worker at
once when its kernel (the parent process) is gone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import zmq

from kernel.lifeline import ParentWatch
from syscalls import codec
from syscalls.worker_messages import Heartbeat, Ready


class KernelLink:
    def __init__(self, address: str, worker_id: int, heartbeat_s: float = 1.0, parent: int | None = None):
        self.worker_id = worker_id
        self.heartbeat_s = heartbeat_s
        self.address = address
        self.context = zmq.Context()
        self.socket = self._connect(f"w{worker_id}")
        self.watch = ParentWatch(parent if parent is not None else os.getppid())
        self._stop = threading.Event()
        self._beats = threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True)

    def _connect(self, identity: str) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, identity.encode())
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.address)
        return sock

    def send(self, msg: dict[str, Any]) -> None:
        self.socket.send(codec.pack(msg))

    def send_ready(self, model_info: dict[str, Any]) -> None:
        """Say ready, then start heartbeating (the kernel times a worker out only once ready)."""
        self.send(Ready(self.worker_id, os.getpid(), model_info).to_wire())
        self._beats.start()

    def _heartbeats(self) -> None:
        sock = self._connect(f"h{self.worker_id}")  # a socket belongs to the thread that uses it
        try:
            while not self._stop.wait(self.heartbeat_s):
                self.watch.check()
                sock.send(codec.pack(Heartbeat(self.worker_id, time.time()).to_wire()))
        finally:
            sock.close(linger=0)

    def recv(self, timeout_s: float = 1.0) -> dict[str, Any] | None:
        """Wait up to timeout_s for one message; None on timeout or junk."""
        self.watch.check()
        if not self.socket.poll(int(timeout_s * 1000), zmq.POLLIN):
            return None
        frames = self.socket.recv_multipart()
        try:
            msg = codec.unpack(frames[-1])
        except Exception as exc:
            print(f"worker {self.worker_id}: dropped a bad frame: {exc}", file=sys.stderr)
            return None
        if not isinstance(msg, dict):
            print(f"worker {self.worker_id}: dropped a non-map message", file=sys.stderr)
            return None
        return msg

    def close(self) -> None:
        self._stop.set()
        if self._beats.is_alive():
            self._beats.join(timeout=2 * self.heartbeat_s + 1)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.close()
        self.context.term()
