"""Exact mode through real processes: with --max-batch 1 every request's tokens are identical
under fifo, rr quantum 1 (with a KV budget that forces swaps to LMDB, and two workers so
requests migrate), and mlfq; afterwards no snapshot is left in LMDB."""

from __future__ import annotations

import time

import lmdb
import pytest

from tests.kernelproc import KernelProc

BPT = 4096  # tiny model: KV bytes per token
# (agent, label, prompt, max_new_tokens, extra sampling args)
WORKLOAD = [
    ("a0", "g", "The kernel schedules agents.", 30, {}),
    ("a0", "s", "Sampling with a seed.", 24, {"temperature": 0.9, "top_k": 40, "seed": 7}),
    ("a1", "b", "Beams resume exactly.", 20, {"num_beams": 2, "length_penalty": 1.2}),
    ("a1", "p", "Nucleus sampling too.", 28, {"temperature": 1.1, "top_p": 0.8, "seed": 3}),
    ("a2", "g", "Another greedy request", 36, {}),
    ("a3", "b3", "Three beams now", 16, {"num_beams": 3, "early_stopping": True}),
]
# the largest request alone, "Three beams now" (15 + 16 new) * 3 beams = 93 token rows, fits;
# any two of the longer ones do not, so preempted requests are swapped to LMDB
KV_BUDGET = 100 * BPT


def run_workload(tmp_path, name: str, *flags: str, workers: int = 1,
                 stagger_s: float = 0.0) -> tuple[dict, dict, KernelProc]:
    """WORKLOAD's outputs and sched.stats rows; `stagger_s`: the rest arrive that long after the first."""
    k = KernelProc(tmp_path / name, "--max-batch", "1", *flags, workers=workers).wait_ready()
    try:
        clients = {agent: k.client(agent) for agent in sorted({w[0] for w in WORKLOAD})}
        pending = {}
        for i, (agent, label, prompt, n, extra) in enumerate(WORKLOAD):
            pending[f"{agent}/{label}"] = clients[agent].submit("llm.generate", prompt=prompt, max_new_tokens=n,
                                                                request_id=label, **extra)
            if i == 0:
                time.sleep(stagger_s)
        outputs = {rid: p.result(300)["token_ids"] for rid, p in pending.items()}
        with k.client() as c:
            sched_stats = c.sched_stats()
            stats = {r["rid"]: r for r in sched_stats["requests"]}
            k.overhead = sched_stats["overhead"]
        for c in clients.values():
            c.close()
    finally:
        assert k.stop() == 0
    assert not k.leftovers(), k.leftovers()
    return outputs, stats, k


def snapshot_entries(state_dir) -> int:
    env = lmdb.open(str(state_dir / "snapshots.lmdb"), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            return int(txn.stat()["entries"])
    finally:
        env.close()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    outputs, stats, k = run_workload(tmp_path_factory.mktemp("fifo"), "fifo", "--scheduler", "fifo")
    assert all(r["preemptions"] == 0 for r in stats.values())
    assert k.overhead["num_lookahead_plans"] >= 1, k.overhead  # continuations of the running request
    return outputs


def test_rr_quantum_1_with_swaps_and_migration_is_exact(tmp_path, baseline):
    outputs, stats, k = run_workload(tmp_path, "rr", "--scheduler", "rr", "--quantum", "1",
                                     "--kv-budget", str(KV_BUDGET), workers=2)
    assert outputs == baseline
    assert sum(r["preemptions"] for r in stats.values()) >= 50
    assert sum(len(r["snapshot_durations_s"]) for r in stats.values()) >= 10, "the budget should force swaps"
    migrated = [rid for rid, r in stats.items() if len({s[0] for s in r["slices"]}) == 2]
    assert migrated, "some request should have run on both workers"
    assert snapshot_entries(k.state_dir) == 0


@pytest.mark.parametrize("lookahead", [True, False])
def test_rr_lookahead_is_exact(tmp_path, baseline, lookahead):
    """rr sends a worker its next slice while it runs one (unless --no-lookahead): same tokens."""
    outputs, stats, k = run_workload(tmp_path, "rr", "--scheduler", "rr", "--quantum", "2",
                                     *([] if lookahead else ["--no-lookahead"]))
    assert outputs == baseline
    assert sum(r["preemptions"] for r in stats.values()) >= 20
    assert (k.overhead["num_lookahead_plans"] >= 20) == lookahead, k.overhead


@pytest.mark.parametrize("policy", ["srpt", "las"])
def test_revoked_continuations_are_exact(tmp_path, baseline, policy):
    """The first request runs on in continuations; the others, arriving while it runs, outrank
    it once back from its slice and revoke the one queued: the same tokens."""
    outputs, stats, k = run_workload(tmp_path, policy, "--scheduler", policy, "--quantum", "2", stagger_s=0.02)
    assert outputs == baseline
    o = k.overhead
    assert o["num_lookahead_plans"] >= 2 and o["num_revokes"] >= 1, o
    assert o["num_revokes"] >= o["num_revoked_plans"], o
    assert sum(r["preemptions"] for r in stats.values()) >= 1


def test_fifo_without_lookahead_is_exact(tmp_path, baseline):
    """The baseline (fifo) continued its running request ahead; without that, the same tokens."""
    outputs, stats, k = run_workload(tmp_path, "fifo", "--scheduler", "fifo", "--fifo-slice-steps", "4",
                                     "--no-lookahead")
    assert outputs == baseline
    assert k.overhead["num_lookahead_plans"] == 0 and k.overhead["num_plans"] >= 30, k.overhead


def test_mlfq_with_swaps_is_exact(tmp_path, baseline):
    outputs, stats, k = run_workload(tmp_path, "mlfq", "--scheduler", "mlfq", "--quantum", "1",
                                     "--kv-budget", str(KV_BUDGET))
    assert outputs == baseline
    assert sum(r["preemptions"] for r in stats.values()) > 0
    assert snapshot_entries(k.state_dir) == 0


def test_recompute_preemption_finishes_every_request(tmp_path, baseline):
    """--preempt recompute re-prefills (not bit-exact by design): lengths hold, nothing leaks."""
    outputs, stats, k = run_workload(tmp_path, "recompute", "--scheduler", "rr", "--quantum", "2",
                                     "--kv-budget", str(KV_BUDGET), "--preempt", "recompute")
    assert {rid: len(ids) for rid, ids in outputs.items()} == {rid: len(ids) for rid, ids in baseline.items()}
    assert all(r["state"] == "finished" for r in stats.values())
    assert snapshot_entries(k.state_dir) == 0


def test_snapshots_belong_to_their_agent(tmp_path):
    """Another agent sees or cancels an agent's swapped requests only with a grant."""
    import time

    from agents.sdk import KernelError

    k = KernelProc(tmp_path / "snap", "--max-batch", "1", "--scheduler", "rr", "--quantum", "1",
                   "--kv-budget", str(KV_BUDGET)).wait_ready()
    try:
        with k.client("owner") as a, k.client("other") as b:
            pending = [a.submit("llm.generate", prompt=f"request {i} " * 3, max_new_tokens=60, request_id=f"r{i}")
                       for i in range(3)]
            deadline = time.monotonic() + 60
            while not (rows := a.llm_snapshots()["snapshots"]) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert rows and all(r["request_id"].startswith("owner/") and r["bytes"] > 0 and r["has_kv"] for r in rows)
            for call, args in (("llm.snapshots", {}), ("llm.cancel", {"request_id": "r2"})):
                try:
                    b.call(call, owner="owner", **args)
                    raise AssertionError(f"{call} on another agent's snapshots without a grant")
                except KernelError as e:
                    assert e.code == "PERMISSION_DENIED"
            a.access_grant(grantee="other", resource="snapshots", mode="read")
            assert isinstance(b.llm_snapshots(owner="owner")["snapshots"], list)
            a.access_grant(grantee="other", resource="snapshots", mode="write")
            assert b.llm_cancel(request_id="r2", owner="owner")["cancelled"] is True
            try:
                pending[2].result(30)
                raise AssertionError("a cancelled request must not succeed")
            except KernelError as e:
                assert e.code == "CANCELLED"
            assert [len(p.result(120)["token_ids"]) for p in pending[:2]] == [60, 60]
            assert a.llm_snapshots()["snapshots"] == []
            denials = [e for e in a.audit_query(event="deny")["events"] if e["resource"] == "snapshots"]
            assert len(denials) == 2
    finally:
        assert k.stop() == 0
    assert snapshot_entries(k.state_dir) == 0
