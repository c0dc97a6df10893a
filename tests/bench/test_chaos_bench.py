"""bench chaos: how a chaos run is judged against a calm one (pure functions on launch reports)."""

from __future__ import annotations

from benchmarks.chaos import compare, percentile, recovery_times


def report(rows: list[dict], failed_agents: int = 0) -> dict:
    return {"requests": rows, "summary": {"num_failed_agents": failed_agents}}


def row(rid: str, sha: str, state: str = "finished", recovery_s=(), slices=()) -> dict:
    return {"request_id": rid, "output_sha256": sha, "state": state, "recovery_s": list(recovery_s),
            "slices": [list(s) for s in slices]}


def test_compare_counts_lost_failed_and_identical():
    calm = report([row("a/0", "x"), row("a/1", "y"), row("b/0", "z")])
    chaos = report([row("a/0", "x"), row("a/1", "DIFFERENT"), row("c/9", "w", state="failed")], failed_agents=1)
    assert compare(calm, chaos) == {"requests": 3, "lost": 1, "failed": 1, "failed_agents": 1, "identical_outputs": 1}


def test_recovery_time_is_kill_to_the_next_slice_that_made_tokens():
    slices = [(0, 0.0, 1.0, 5), (1, 2.0, 2.5, 0), (1, 2.5, 3.25, 4), (1, 4.0, 5.0, 4)]
    chaos = report([row("a/0", "x", recovery_s=[1.5], slices=slices), row("a/1", "y", recovery_s=[9.0], slices=slices)])
    assert recovery_times(chaos) == [1.75]  # the second never ran again after its recovery: not counted


def test_percentile():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([3.0, 1.0, 2.0], 0.99) == 3.0
