"""Nothing lost when a worker is killed (SIGKILL) mid-work: every request it held replays on a
live or respawned worker from its prompt, the kernel checks the replayed tokens against those it
already produced and streams none twice, and every output equals a calm run's, bit for bit.
Afterwards no snapshot is left in LMDB and no process is left behind."""

from __future__ import annotations

import os
import signal

import pytest

from agents.sdk import KernelError
from kernel.llm.journal import Journal
from kernel.llm.keys import checkpoint_key
from syscalls.schema import validate_args
from syscalls.table import SYSCALLS
from tests.integration.test_scheduling import snapshot_entries
from tests.kernelproc import KernelProc, child_pids, is_alive, wait_for
from workers.store import SnapshotStore

BPT = 4096  # tiny model: KV bytes per token
# (agent, label, prompt, max_new_tokens, extra args); long enough that a kill lands mid-run
WORKLOAD = [
    ("a0", "g", "The kernel schedules agents.", 90, {"stream": True}),
    ("a0", "s", "Sampling with a seed.", 80, {"temperature": 0.9, "top_k": 40, "seed": 7, "stream": True}),
    ("a1", "b", "Beams resume exactly.", 30, {"num_beams": 2}),
    ("a1", "p", "Nucleus sampling too.", 85, {"temperature": 1.1, "top_p": 0.8, "logprobs": True}),
    ("a2", "g", "Another greedy request", 95, {"stream": True, "logprobs": True}),
    ("a3", "u", "Unseeded sampling", 70, {"temperature": 1.0}),
]
KV_BUDGET = 240 * BPT  # two of the long ones do not fit together: rr swaps to LMDB


def worker_pids(k: KernelProc) -> dict[int, int]:
    with k.client() as c:
        return {w["worker_id"]: w["pid"] for w in c.sched_stats()["workers"] if w["is_ready"]}


def submit_workload(k: KernelProc) -> tuple[dict, dict, dict]:
    """One SDK client per agent of WORKLOAD, each request submitted, streamed tokens collected.
    Returns (clients by agent, streamed tokens by rid, Pending by rid)."""
    clients = {agent: k.client(agent) for agent in sorted({w[0] for w in WORKLOAD})}
    streamed: dict[str, list[int]] = {f"{a}/{label}": [] for a, label, *_ in WORKLOAD}
    pending = {
        f"{agent}/{label}": clients[agent].submit(
            "llm.generate", lambda m, r=f"{agent}/{label}": streamed[r].extend(m["token_ids"]),
            prompt=prompt, max_new_tokens=n, request_id=label, **extra)
        for agent, label, prompt, n, extra in WORKLOAD
    }
    return clients, streamed, pending


def run(tmp_path, name: str, *flags: str, workers: int = 1, kills: int = 0, after: int = 5) -> tuple[dict, dict, dict]:
    """Run WORKLOAD; with kills > 0, SIGKILL worker 0 once some request has streamed `after`
    tokens, and again (kills - 1 times) as soon as its replacement is ready. Returns (results,
    streamed tokens, stats)."""
    k = KernelProc(tmp_path / name, *flags, workers=workers).wait_ready()
    try:
        clients, streamed, pending = submit_workload(k)
        for _ in range(kills):
            victim = wait_for(lambda: worker_pids(k).get(0), timeout_s=120, what="worker 0 ready")
            wait_for(lambda: [c.pump() for c in clients.values()] and any(len(s) >= after for s in streamed.values()),
                     timeout_s=60, what="tokens flowing")
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda v=victim: worker_pids(k).get(0) not in (None, v), timeout_s=120, what="respawn")
        results = {rid: p.result(300) for rid, p in pending.items()}
        with k.client() as c:
            stats = {r["rid"]: r for r in c.sched_stats()["requests"]}
        for c in clients.values():
            c.close()
    finally:
        assert k.stop() == 0
    assert not k.leftovers(), k.leftovers()
    assert snapshot_entries(k.state_dir) == 0
    return results, streamed, stats


def outputs(results: dict) -> dict:
    return {rid: (r["token_ids"], r.get("logprobs")) for rid, r in results.items()}


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    results, streamed, stats = run(tmp_path_factory.mktemp("calm"), "calm", "--scheduler", "fifo", "--max-batch", "1")
    assert not any(r["recovery_s"] for r in stats.values())
    return outputs(results)


@pytest.mark.parametrize("flags,workers,kills,after", [
    (("--scheduler", "fifo", "--max-batch", "1", "--checkpoint-every", "0"), 1, 1, 5),
    (("--scheduler", "rr", "--quantum", "2", "--max-batch", "4", "--kv-pool-bytes", str(KV_BUDGET),
      "--checkpoint-every", "4"), 1, 2, 30),
    (("--scheduler", "mlfq", "--quantum", "1", "--max-batch", "2"), 2, 1, 5),
], ids=["fifo-from-prompts", "rr-swaps-checkpoints-killed-twice", "mlfq-2-workers"])
def test_worker_killed_mid_run_loses_nothing(tmp_path, calm, flags, workers, kills, after):
    results, streamed, stats = run(tmp_path, "chaos", *flags, workers=workers, kills=kills, after=after)
    assert outputs(results) == calm
    for rid, (*_, extra) in zip(results, WORKLOAD, strict=True):
        if extra.get("stream"):
            assert streamed[rid] == results[rid]["token_ids"], f"{rid}: streamed twice or lost tokens"
    resumed = [n for r in stats.values() for n in r["recovery_resume_tokens"]]
    assert resumed, "the kill should have caught some request mid-run"
    assert all(r["state"] == "finished" for r in stats.values())
    if "--checkpoint-every" in flags and flags[flags.index("--checkpoint-every") + 1] != "0":
        assert max(resumed) >= 16, f"requests should resume from their checkpoints: {resumed}"
    else:
        assert max(resumed) == 0, f"without checkpoints requests replay from their prompts: {resumed}"


def test_kernel_killed_mid_run_agents_keep_going(tmp_path, calm):
    """kill -9 the kernel mid-run and start a new one on the same state dir: it resumes every
    request of its journal from its checkpoint, the agents (SDK clients, still waiting on their
    calls) reconnect, register again and re-attach; outputs equal a calm run's, no token is
    streamed twice, and nothing is left in LMDB or running afterwards."""
    flags = ("--scheduler", "rr", "--quantum", "2", "--max-batch", "4", "--kv-pool-bytes", str(KV_BUDGET),
             "--checkpoint-every", "4", "--tool-workers", "1")
    k = KernelProc(tmp_path / "s", *flags).wait_ready()
    k2 = None
    try:
        clients, streamed, pending = submit_workload(k)
        wait_for(lambda: [c.pump() for c in clients.values()] and any(len(s) >= 30 for s in streamed.values()),
                 timeout_s=120, what="tokens flowing")
        children = child_pids(k.pid)
        k.proc.send_signal(signal.SIGKILL)
        k.proc.wait()
        wait_for(lambda: not any(is_alive(p) for p in children), timeout_s=5, what="the kernel's children to die")
        k2 = KernelProc(tmp_path / "s", *flags)
        results = {rid: p.result(300) for rid, p in pending.items()}
        assert all(c.num_reconnects == 1 for c in clients.values())
        for c in clients.values():
            c.close()
        with k2.client() as c:
            stats = c.sched_stats()
    finally:
        assert (k2 or k).stop() == 0
    assert outputs(results) == calm
    for rid, (*_, extra) in zip(results, WORKLOAD, strict=True):
        if extra.get("stream"):
            assert streamed[rid] == results[rid]["token_ids"], f"{rid}: streamed twice or lost tokens"
    resumed = [n for r in stats["requests"] for n in r["recovery_resume_tokens"]]
    assert resumed and max(resumed) >= 16, f"requests should resume from their checkpoints: {resumed}"
    assert stats["journal"]["requests"] == stats["journal"]["tokens"] == 0
    assert not k2.leftovers(), k2.leftovers()
    assert snapshot_entries(k2.state_dir) == 0


def test_requests_whose_agent_never_comes_back_are_cancelled_and_freed(tmp_path):
    """What a killed kernel leaves: a journaled request resuming from a checkpoint, that checkpoint
    and a stale snapshot. The next kernel keeps the checkpoint and deletes the rest at start; the
    agent does not come back within --reattach-grace, so the request is cancelled, its checkpoint
    freed, and its reply (kept as long) expires."""
    state = tmp_path / "s"
    journal = Journal(state / "journal.lmdb")
    journal.accept("ghost/lost", "ghost", validate_args(SYSCALLS["llm.generate"], {"prompt": "gone", "max_new_tokens": 40}))
    journal.produced({"ghost/lost": [5, 6, 7]})
    journal.checkpointed("ghost/lost", "dead.0", 1, 3)
    journal.close()
    snapshots = SnapshotStore(state / "snapshots.lmdb")
    snapshots.put_entries(checkpoint_key("dead.0", 1), [("meta", b"a checkpoint"), ("t/k", b"kv")])
    snapshots.put_entries("dead.1", [("meta", b"a snapshot nobody needs")])
    snapshots.close()
    k = KernelProc(state, "--reattach-grace", "0.5").wait_ready()  # the grace ends before the worker is ready
    try:
        with k.client() as c:
            wait_for(lambda: c.sched_stats()["journal"]["requests"] == 0, what="the request to be cancelled")
        wait_for(lambda: snapshot_entries(state) == 0, what="its checkpoint to be freed")
        with k.client("ghost") as c, pytest.raises(KernelError) as err:  # its reply, kept for the grace, expired too
            c.llm_attach(request_id="lost")
        assert err.value.code == "NOT_FOUND"
    finally:
        assert k.stop() == 0
    log = (state / "kernel.log").read_text()
    assert "removed 1 snapshot entries" in log and "recovered 1 request(s) from the journal (1 from checkpoints)" in log
    assert "request ghost/lost failed: CANCELLED: agent ghost did not re-attach within" in log
