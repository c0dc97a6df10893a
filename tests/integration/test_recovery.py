"""Nothing lost when a worker is killed (SIGKILL) mid-work: every request it held replays on a
live or respawned worker from its prompt, the kernel checks the replayed tokens against those it
already produced and streams none twice, and every output equals a calm run's, bit for bit.
Afterwards no snapshot is left in LMDB and no process is left behind."""

from __future__ import annotations

import os
import signal

import pytest

from tests.integration.test_scheduling import snapshot_entries
from tests.kernelproc import KernelProc, child_pids, is_alive, wait_for

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


def run(tmp_path, name: str, *flags: str, workers: int = 1, kills: int = 0, after: int = 5) -> tuple[dict, dict, dict]:
    """Run WORKLOAD; with kills > 0, SIGKILL worker 0 once some request has streamed `after`
    tokens, and again (kills - 1 times) as soon as its replacement is ready. Returns (results,
    streamed tokens, stats)."""
    k = KernelProc(tmp_path / name, *flags, workers=workers).wait_ready()
    try:
        clients = {agent: k.client(agent) for agent in sorted({w[0] for w in WORKLOAD})}
        streamed: dict[str, list[int]] = {f"{a}/{label}": [] for a, label, *_ in WORKLOAD}
        pending = {
            f"{agent}/{label}": clients[agent].submit(
                "llm.generate", lambda m, r=f"{agent}/{label}": streamed[r].extend(m["token_ids"]),
                prompt=prompt, max_new_tokens=n, request_id=label, **extra)
            for agent, label, prompt, n, extra in WORKLOAD
        }
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


def test_kernel_killed_leaves_no_child_and_its_snapshots_are_cleared(tmp_path):
    """kill -9 a kernel with a request swapped out to LMDB: its worker and tool runners die with it;
    the next kernel on the state dir starts with an empty snapshot store (no request of its own
    needs them) and serves."""
    k = KernelProc(tmp_path / "s", "--scheduler", "rr", "--quantum", "1", "--kv-pool-bytes", str(80 * BPT),
                   "--tool-workers", "2").wait_ready()
    children = child_pids(k.pid)
    assert len(children) >= 3, children  # one worker and two tool runners
    with k.client("a") as c:
        pending = [c.submit("llm.generate", prompt="Swap me out, please.", max_new_tokens=60, request_id=f"r{i}")
                   for i in range(2)]  # two do not fit together: one is swapped out at each turn
        wait_for(lambda: c.pump() >= 0 and snapshot_entries(k.state_dir) > 0, timeout_s=60, what="a swap to LMDB")
        k.proc.send_signal(signal.SIGKILL)
        k.proc.wait()
        del pending
    wait_for(lambda: not any(is_alive(p) for p in children), timeout_s=5, what="the kernel's children to die")
    k2 = KernelProc(tmp_path / "s").wait_ready()
    try:
        assert snapshot_entries(k2.state_dir) == 0
        with k2.client("b") as c:
            assert len(c.llm_generate(prompt="still serving", max_new_tokens=4)["token_ids"]) == 4
    finally:
        assert k2.stop() == 0
    assert "removed" in (k2.state_dir / "kernel.log").read_text()
