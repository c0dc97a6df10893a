"""Process hygiene: heartbeats come from a thread (a blocked main thread does not silence a
healthy worker), and children of a process killed with SIGKILL die with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import zmq

from syscalls import codec
from tests.kernelproc import is_alive, wait_for
from workers.link import KernelLink

ROOT = Path(__file__).resolve().parents[2]


def test_heartbeats_flow_while_the_main_thread_is_busy(tmp_path):
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    address = f"ipc://{tmp_path}/w.sock"
    router.bind(address)
    link = KernelLink(address, 3, heartbeat_s=0.05, parent=os.getppid())
    try:
        link.send_ready({"model_id": "x"})
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # a long forward: the main thread neither sends nor receives
            sum(i * i for i in range(20_000))
        beats = []
        while router.poll(0):
            identity, frame = router.recv_multipart()
            beats.append((identity, codec.unpack(frame)["type"]))
    finally:
        link.close()
        router.close()
    assert beats[0] == (b"w3", "ready")
    assert sum(1 for b in beats if b == (b"h3", "heartbeat")) >= 8, beats


CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "from kernel.lifeline import die_with_parent; "
                               "die_with_parent(); import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def test_a_child_dies_with_its_parent_killed_by_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    grandchild = int(parent.stdout.readline())
    time.sleep(0.5)  # let it arm the signal
    assert is_alive(grandchild)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_for(lambda: not is_alive(grandchild), timeout_s=5, what="the orphan to die")
