"""KernelLink: the worker's DEALER socket to the kernel's ROUTER (ipc://STATE/workers.sock).

Owned by the worker's main thread. Identity b"w<id>"; single-frame codec messages; heartbeats
go out whenever `heartbeat_if_due` is called and heartbeat_s has passed (the main loop calls it
while idle and between decode steps).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import zmq

from syscalls import codec
from syscalls.worker_messages import Heartbeat, Ready


class KernelLink:
    def __init__(self, address: str, worker_id: int, heartbeat_s: float = 1.0):
        self.worker_id = worker_id
        self.heartbeat_s = heartbeat_s
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.IDENTITY, f"w{worker_id}".encode())
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.last_heartbeat = 0.0

    def send(self, msg: dict[str, Any]) -> None:
        self.socket.send(codec.pack(msg))

    def send_ready(self, model_info: dict[str, Any]) -> None:
        self.send(Ready(self.worker_id, os.getpid(), model_info).to_wire())
        self.last_heartbeat = time.monotonic()

    def heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= self.heartbeat_s:
            self.send(Heartbeat(self.worker_id, time.time()).to_wire())
            self.last_heartbeat = now

    def recv(self) -> dict[str, Any] | None:
        """Wait until the next heartbeat is due for one message; None on timeout or junk."""
        wait_s = max(0.0, self.last_heartbeat + self.heartbeat_s - time.monotonic())
        if not self.socket.poll(int(wait_s * 1000) + 1, zmq.POLLIN):
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
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.close()
        self.context.term()
