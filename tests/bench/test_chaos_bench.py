"""bench chaos: how a chaos run is judged against a calm one (pure functions on launch reports)."""

from __future__ import annotations

from benchmarks.chaos import compare, kernel_recovery_times, merge_stats, percentile, recovery_times


def report(rows: list[dict], failed_agents: int = 0, received: dict | None = None) -> dict:
    return {"requests": rows, "summary": {"num_failed_agents": failed_agents},
            "received": {r["request_id"]: r["output_sha256"] for r in rows} if received is None else received}


def row(rid: str, sha: str, state: str = "finished", recovery_s=(), slices=()) -> dict:
    return {"request_id": rid, "output_sha256": sha, "state": state, "recovery_s": list(recovery_s),
            "slices": [list(s) for s in slices]}


def test_compare_counts_lost_failed_and_identical_by_what_agents_received():
    calm = report([row("a/0", "x"), row("a/1", "y"), row("b/0", "z")])
    chaos = report([row("a/0", "x"), row("a/1", "DIFFERENT"), row("b/0", "z"), row("c/9", "w", state="failed")],
                   failed_agents=1, received={"a/0": "x", "a/1": "DIFFERENT"})  # b/0 never reached its agent
    assert compare(calm, chaos) == {"requests": 3, "lost": 1, "failed": 1, "failed_agents": 1, "identical_outputs": 1}


def test_successive_kernels_stats_keep_each_requests_latest_row():
    first = {"requests": [{"rid": "a/0", "state": "finished"}, {"rid": "a/1", "state": "running"}], "policy": "rr"}
    second = {"requests": [{"rid": "a/1", "state": "finished"}, {"rid": "a/2", "state": "finished"}], "policy": "rr"}
    merged = merge_stats([first, second])
    assert {r["rid"]: r["state"] for r in merged["requests"]} == {"a/0": "finished", "a/1": "finished", "a/2": "finished"}


def test_kernel_recovery_is_kill_to_the_next_slice_that_made_tokens_for_requests_in_flight():
    slices = [(0, 0.0, 1.0, 5), (0, 9.0, 9.5, 0), (0, 9.5, 10.0, 3)]
    chaos = report([row("a/0", "x", slices=slices), row("a/1", "y", slices=slices)])
    chaos |= {"kernel_kills": [2.0], "in_flight_at_kernel_kill": ["a/0"]}
    assert kernel_recovery_times(chaos) == [8.0]


def test_recovery_time_is_kill_to_the_next_slice_that_made_tokens():
    slices = [(0, 0.0, 1.0, 5), (1, 2.0, 2.5, 0), (1, 2.5, 3.25, 4), (1, 4.0, 5.0, 4)]
    chaos = report([row("a/0", "x", recovery_s=[1.5], slices=slices), row("a/1", "y", recovery_s=[9.0], slices=slices)])
    assert recovery_times(chaos) == [1.75]  # the second never ran again after its recovery: not counted


def test_percentile():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([3.0, 1.0, 2.0], 0.99) == 3.0
