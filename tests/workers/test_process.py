"""Real worker processes driven over ZeroMQ as the kernel would: restores cross processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import given, settings

from syscalls import codec
from tests.workers.plans import prefill, sliced, uninterrupted
from tests.workers.strategies import cut_points, gen_params, prompts
from workers.store import SnapshotStore, entry_key

ROOT = Path(__file__).resolve().parents[2]
RIDS = itertools.count()
pytestmark = pytest.mark.slow


class FakeKernel:
    """The kernel's side of the worker protocol: a ROUTER, plans out, plan_done back."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.address = f"ipc://{state_dir}/workers.sock"
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(self.address)
        self.procs: dict[int, subprocess.Popen] = {}
        self.ready: dict[int, dict] = {}
        self.heartbeats: dict[int, int] = {}
        self.plan_ids = itertools.count()

    def spawn(self, wid: int, *extra: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "workers", "--worker-id", str(wid), "--kernel", self.address,
               "--state-dir", str(self.state_dir), "--model", "tiny", "--heartbeat-s", "0.2",
               "--record-scores", *extra]
        self.procs[wid] = subprocess.Popen(cmd, cwd=ROOT)
        return self.procs[wid]

    def recv(self, timeout_s: float = 60.0) -> tuple[int, dict]:
        if not self.router.poll(int(timeout_s * 1000)):
            raise TimeoutError("no message from any worker")
        identity, frame = self.router.recv_multipart()
        msg = codec.unpack(frame)
        wid = int(identity.decode()[1:])
        if msg["type"] == "heartbeat":
            self.heartbeats[wid] = self.heartbeats.get(wid, 0) + 1
        elif msg["type"] == "ready":
            self.ready[wid] = msg
        return wid, msg

    def wait_ready(self, wids: list[int], timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(w in self.ready for w in wids):
            self.recv(max(0.1, deadline - time.monotonic()))

    def send(self, wid: int, msg: dict) -> None:
        self.router.send_multipart([f"w{wid}".encode(), codec.pack(msg)])

    def execute(self, wid: int, plan: dict) -> dict:
        plan = {"type": "plan", "evict": [], "load": [], "decode": [], "steps": 0, **plan}
        plan["plan_id"] = f"{plan['plan_id']}#{next(self.plan_ids)}"
        self.send(wid, plan)
        while True:
            got_wid, msg = self.recv()
            if msg["type"] == "plan_done" and msg["plan_id"] == plan["plan_id"]:
                assert got_wid == wid
                return msg

    def executor(self, wid: int) -> Any:
        return lambda plan: self.execute(wid, plan)

    def close(self) -> None:
        for wid, proc in self.procs.items():
            if proc.poll() is None:
                self.send(wid, {"type": "shutdown"})
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.router.close()
        self.context.term()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKernel]:
    state_dir = tmp_path_factory.mktemp("state")
    fake = FakeKernel(state_dir)
    fake.spawn(1)
    fake.spawn(2)
    fake.wait_ready([1, 2])
    yield fake
    fake.close()
    assert all(p.returncode == 0 for p in fake.procs.values()), {w: p.returncode for w, p in fake.procs.items()}


def entries(kernel: FakeKernel) -> int:
    store = SnapshotStore(kernel.state_dir / "snapshots.lmdb")
    try:
        return store.count_entries()
    finally:
        store.close()


def test_ready_describes_the_model(kernel: FakeKernel) -> None:
    for wid in (1, 2):
        msg = kernel.ready[wid]
        assert msg["worker_id"] == wid and msg["pid"] == kernel.procs[wid].pid
        assert msg["model"]["kv_bytes_per_token"] == 4 * 2 * 2 * 64 * 4
        assert msg["model"]["fingerprint"]["torch_threads"] == 1
    assert kernel.ready[1]["model"]["fingerprint"] == kernel.ready[2]["model"]["fingerprint"]


@settings(max_examples=12, deadline=None)
@given(prompt=prompts, params=gen_params(), cuts=cut_points())
def test_resume_in_another_process_is_bit_exact(kernel: FakeKernel, prompt: list[int], params: dict, cuts: list[int]) -> None:
    ref = uninterrupted(kernel.executor(1), f"ref{next(RIDS)}", prompt, params)
    run = sliced([kernel.executor(1), kernel.executor(2)], f"x{next(RIDS)}", prompt, params, cuts)
    assert not ref.errors and not run.errors
    assert run.output_ids == ref.output_ids and run.finish_reason == ref.finish_reason
    assert run.step_scores == ref.step_scores
    assert entries(kernel) == 0


def test_heartbeats_while_idle(kernel: FakeKernel) -> None:
    before = dict(kernel.heartbeats)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            kernel.recv(0.1)
        except TimeoutError:
            pass
    assert all(kernel.heartbeats.get(w, 0) >= before.get(w, 0) + 3 for w in (1, 2)), kernel.heartbeats


def test_corrupt_snapshot_then_keeps_serving_and_free_deletes(kernel: FakeKernel) -> None:
    rid = f"bad{next(RIDS)}"
    done = kernel.execute(1, {"plan_id": "p", "load": [prefill(rid, [1, 2, 3], {"max_new_tokens": 20})], "decode": [rid], "steps": 2})
    assert done["results"][0]["error"] is None
    done = kernel.execute(1, {"plan_id": "e", "evict": [{"rid": rid, "mode": "swap"}]})
    assert done["evicted"][0]["error"] is None
    assert done["t_start"] <= done["t_end"] <= time.monotonic()  # one clock across processes
    assert time.monotonic() - done["t_start"] < 60
    store = SnapshotStore(kernel.state_dir / "snapshots.lmdb")
    with store.env.begin(write=True) as txn:
        value = bytearray(txn.get(entry_key(rid, "t/v3")))
        value[7] ^= 0x80
        txn.put(entry_key(rid, "t/v3"), bytes(value))
    store.close()
    done = kernel.execute(2, {"plan_id": "r", "load": [{"rid": rid, "mode": "restore"}], "decode": [rid], "steps": 5})
    assert done["loaded"][0]["error"]["code"] == "SNAPSHOT_INVALID"
    ok = uninterrupted(kernel.executor(2), f"ok{next(RIDS)}", [4, 5], {"max_new_tokens": 4})
    assert ok.output_ids is not None and len(ok.output_ids) == 4
    assert entries(kernel) > 0
    kernel.send(2, {"type": "free", "rids": [rid]})
    kernel.execute(2, {"plan_id": "sync"})  # messages run in order: free is done by now
    assert entries(kernel) == 0


def test_sigterm_exits_zero(kernel: FakeKernel) -> None:
    proc = kernel.spawn(3)
    kernel.wait_ready([3])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert os.path.exists(kernel.state_dir / "snapshots.lmdb")


def test_revoke_drops_a_queued_plan_and_a_late_one_is_ignored(kernel: FakeKernel) -> None:
    """A revoke that reaches the worker before its plan starts turns that plan into a `revoked`
    answer that changed nothing; the plans around it run as sent; a revoke for a plan already
    answered is ignored."""
    rid = f"rv{next(RIDS)}"
    params = {"max_new_tokens": 40}
    kernel.send(1, {"type": "plan", "plan_id": "rv-a", "evict": [], "load": [prefill(rid, [1, 2, 3], params)],
                    "decode": [rid], "steps": 30, "checkpoint": []})
    for plan_id in ("rv-b", "rv-c"):  # both queued behind rv-a while it runs
        kernel.send(1, {"type": "plan", "plan_id": plan_id, "evict": [], "load": [], "decode": [rid], "steps": 5,
                        "checkpoint": []})
    kernel.send(1, {"type": "revoke", "plan_id": "rv-b"})
    answers = {}
    while len(answers) < 3:
        _, msg = kernel.recv()
        if msg["type"] == "plan_done":
            answers[msg["plan_id"]] = msg
    assert [answers[p].get("revoked") for p in ("rv-a", "rv-b", "rv-c")] == [False, True, False]
    assert answers["rv-b"]["results"] == [] and answers["rv-b"]["loaded"] == []
    steps = [answers[p]["results"][0]["num_steps"] for p in ("rv-a", "rv-c")]
    assert steps == [30, 5]
    kernel.send(1, {"type": "revoke", "plan_id": "rv-c"})  # already answered: nothing happens
    done = kernel.execute(1, {"plan_id": "rv-d", "decode": [rid], "steps": 5})
    assert not done["revoked"] and done["results"][0]["output_ids"] is not None  # 40 tokens in all
    kernel.send(1, {"type": "free", "rids": [rid]})
