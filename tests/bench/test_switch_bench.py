"""bench switch: the interleaving that keeps cache state from favouring one measurement."""

from __future__ import annotations

import itertools
import math
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.switch import interleaved_runs, run_orders


def within_round_successors(orders: list[list[str]]) -> Counter:
    return Counter((a, b) for order in orders for a, b in itertools.pairwise(order))


@given(num_fns=st.integers(2, 4), cycles=st.integers(1, 3))
def test_every_fn_follows_every_other_equally_often(num_fns: int, cycles: int) -> None:
    names = [f"f{i}" for i in range(num_fns)]
    orders = run_orders(names, math.factorial(num_fns) * cycles)
    assert all(sorted(order) == names for order in orders)
    pairs = within_round_successors(orders)
    assert set(pairs) == {(a, b) for a in names for b in names if a != b}
    assert len(set(pairs.values())) == 1


def test_plain_rotation_would_not_be_balanced() -> None:
    """What the check above guards against: rotations keep each fn's successor fixed."""
    names = ["switch", "raw", "recompute"]
    rotations = [names[i:] + names[:i] for i in range(3)]
    assert within_round_successors(rotations)[("recompute", "switch")] == 2
    assert within_round_successors(rotations)[("recompute", "raw")] == 0


def test_interleaved_runs_calls_in_the_planned_orders() -> None:
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name) or len(calls)) for name in ("a", "b", "c")}
    medians, results = interleaved_runs(fns, 6)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert [calls[3 + 3 * i: 6 + 3 * i] for i in range(6)] == run_orders(["a", "b", "c"], 6)
    assert set(medians) == set(fns) and all(len(r) == 6 for r in results.values())


def test_stage_times_move_rebooks_without_changing_the_total() -> None:
    from workers.restore import StageTimes

    times = StageTimes()
    times.lap("put")
    total = sum(times.seconds.values())
    times.move("put", "checksum", times.seconds["put"] / 4)
    assert set(times.seconds) == {"put", "checksum"}
    assert abs(sum(times.seconds.values()) - total) < 1e-12
    assert abs(times.seconds["put"] - 3 * times.seconds["checksum"]) < 1e-12
