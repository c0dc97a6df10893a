"""Order, demotion, boost and counter behaviour of each policy, driven through the wire shapes."""

from __future__ import annotations

import math

import pytest

from kernel.scheduler import POLICIES, SchedConfig, make_policy
from tests.scheduler.harness import Harness


def _harness(policy: str, **kw) -> Harness:
    kw.setdefault("max_batch", 1)
    return Harness(SchedConfig(policy=policy, **kw), num_workers=1)


def _run_plan(h: Harness) -> list[str]:
    assert h.dispatch(0)
    decoded = list(h.inflight[0][-1]["decode"])
    h.complete(0)
    h.check()
    return decoded


def test_registry_has_every_policy_and_rejects_unknown():
    assert set(POLICIES) == {"fifo", "rr", "mlfq", "fair", "priority", "srpt", "las", "plas"}
    with pytest.raises(ValueError, match="unknown policy 'lottery'"):
        make_policy("lottery", SchedConfig())


def test_fifo_runs_in_arrival_order_to_completion():
    h = _harness("fifo", fifo_slice_steps=2)
    for i in range(3):
        h.submit("a", 4, 5, 1, 0, None)
        h.clock.advance(0.001 * (i + 1))
    order = [_run_plan(h) for _ in range(9)]
    assert order == [["a/0"]] * 3 + [["a/1"]] * 3 + [["a/2"]] * 3
    assert all(c.request.timeline.preemptions == 0 for c in h.completed.values())


def test_fifo_new_requests_join_when_there_is_room():
    h = _harness("fifo", fifo_slice_steps=2, max_batch=2)
    h.submit("a", 4, 2, 1, 0, None)
    h.submit("a", 4, 6, 1, 0, None)
    h.submit("a", 4, 6, 1, 0, None)
    assert _run_plan(h) == ["a/0", "a/1"]
    assert _run_plan(h) == ["a/1", "a/2"]  # a/0 finished; a/2 joins behind a/1


def test_fifo_never_preempts_for_a_later_arrival_under_kv_pressure():
    # budget fits one request at full length: the second waits instead of evicting the first
    h = _harness("fifo", fifo_slice_steps=1, max_batch=2, kv_budget_bytes=2 * 25)
    h.submit("a", 10, 5, 1, 0, None)
    h.submit("b", 10, 5, 1, 0, None)
    assert [_run_plan(h) for _ in range(6)] == [["a/0"]] * 5 + [["b/1"]]
    assert h.sim.num_snapshots == 0


def test_priority_lower_value_first_and_preemptive():
    h = _harness("priority", quantum=2)
    h.submit("a", 4, 8, 1, 2, None)
    h.submit("b", 4, 8, 1, 1, None)
    assert _run_plan(h) == ["b/1"]
    h.submit("c", 4, 2, 1, 0, None)
    assert _run_plan(h) == ["c/2"]  # preempts b/1
    assert h.sched.get("b/1").timeline.preemptions == 1
    assert _run_plan(h) == ["b/1"]
    assert _run_plan(h) == ["b/1"]


def test_priority_ages_a_low_priority_request_past_later_high_priority_ones():
    aging_s = 0.01
    h = _harness("priority", quantum=1, priority_aging_s=aging_s)
    h.submit("low", 3, 5, 1, 3, None)  # virtual deadline 0.03
    seen_after = []
    for _ in range(100):
        h.submit("high", 3, 1, 1, 0, None)  # deadline = its arrival
        served = _run_plan(h)
        if "low/0" in served:
            break
        seen_after.append(h.clock.now)
    assert seen_after, "low never waited"
    # every high request that ran first arrived before low's deadline: at most one plan past it
    assert h.clock.now <= 3 * aging_s + 2 * 0.001, h.clock.now


def test_srpt_serves_the_shortest_remaining_by_hint_and_preempts():
    h = _harness("srpt", quantum=2)
    h.submit("a", 3, 10, 1, 0, None)
    h.submit("b", 3, 6, 1, 0, None)
    h.submit("c", 3, 8, 1, 0, None, expected_tokens=4)  # the hint, not max_new_tokens, ranks
    assert _run_plan(h) == ["c/2"]
    assert _run_plan(h) == ["c/2"]  # its hint used up: ranked as about to finish (0)
    h.submit("d", 3, 1, 1, 0, None)
    assert [_run_plan(h) for _ in range(3)] == [["c/2"], ["c/2"], ["d/3"]]  # 0 < 1, then c is done
    assert [_run_plan(h)[0] for _ in range(4)] == ["b/1"] * 3 + ["a/0"]
    assert h.completed["c/2"].request.num_generated == 8  # a hint never cuts a request


def test_srpt_shorter_arrival_preempts_at_the_slice_boundary():
    h = _harness("srpt", quantum=2)
    h.submit("a", 3, 10, 1, 0, None)
    assert _run_plan(h) == ["a/0"]  # 8 left
    h.submit("b", 3, 9, 1, 0, None)
    assert _run_plan(h) == ["a/0"]  # 8 < 9: a keeps going
    h.submit("c", 3, 3, 1, 0, None)
    assert _run_plan(h) == ["c/2"]  # 3 < 6
    assert h.sched.get("a/0").timeline.preemptions == 1


def test_las_serves_the_least_attained_and_rotates_ties():
    h = _harness("las", quantum=2)
    h.submit("a", 3, 20, 2, 0, None)  # two beams: 4 tokens of service per slice
    h.submit("b", 3, 20, 1, 0, None)
    assert [_run_plan(h) for _ in range(4)] == [["a/0"], ["b/1"], ["b/1"], ["a/0"]]
    h.submit("c", 3, 20, 1, 0, None)
    assert _run_plan(h) == ["c/2"]  # fresh: no service yet
    attained = h.sched.policy.attained
    assert attained == {"a/0": 8, "b/1": 4, "c/2": 2}
    assert _run_plan(h) == ["c/2"]  # 2 < 4 (b, queued before c)
    assert _run_plan(h) == ["b/1"]  # tie at 4 with c: b's turn came first


def test_plas_ranks_calls_by_their_program_service():
    h = _harness("plas", quantum=4)
    h.submit("a", 3, 8, 1, 0, None)
    _run_plan(h)
    _run_plan(h)  # a's first call finished: program a has 8 tokens of service
    h.submit("a", 3, 8, 1, 0, None)  # the program's second call
    h.submit("b", 3, 8, 1, 0, None)
    h.submit("a", 3, 8, 1, 0, None, program_id="side")  # another program of agent a
    assert _run_plan(h) == ["b/2"]
    assert _run_plan(h) == ["a/3"]  # (a, side): 0 < b's 4
    service = h.sched.policy.service
    assert service[("a", None)] == 8 and service[("b", None)] == 4 and service[("a", "side")] == 4
    assert [_run_plan(h) for _ in range(3)] == [["b/2"], ["a/3"], ["a/1"]]


def test_plas_forgets_a_program_idle_for_plas_forget_s():
    h = _harness("plas", quantum=4, plas_forget_s=1.0)
    h.submit("a", 3, 4, 1, 0, None)
    _run_plan(h)
    assert h.sched.policy.service == {("a", None): 4}
    h.clock.advance(0.5)
    h.submit("b", 3, 4, 1, 0, None)
    _run_plan(h)
    assert set(h.sched.policy.service) == {("a", None), ("b", None)}  # a idle 0.5 s: kept
    h.clock.advance(1.0)
    h.submit("c", 3, 4, 1, 0, None)
    _run_plan(h)
    assert set(h.sched.policy.service) == {("c", None)}


def test_rr_rotates_every_quantum():
    h = _harness("rr", quantum=2)
    for agent in "abc":
        h.submit(agent, 3, 4, 1, 0, None)
    order = [_run_plan(h)[0] for _ in range(6)]
    assert order == ["a/0", "b/1", "c/2"] * 2


def test_rr_bound_single_worker_no_kv_pressure():
    n, max_batch = 7, 3
    h = _harness("rr", quantum=1, max_batch=max_batch)
    for _ in range(n):
        h.submit("a", 2, 50, 1, 0, None)
    seen: set[str] = set()
    for _ in range(math.ceil(n / max_batch)):
        seen.update(_run_plan(h))
    assert len(seen) == n


def test_mlfq_quantum_doubles_and_demotes_to_the_last_level():
    h = _harness("mlfq", quantum=2, mlfq_levels=3, mlfq_boost_s=100.0)
    h.submit("a", 3, 40, 1, 0, None)
    policy = h.sched.policy
    steps, levels = [], []
    for _ in range(5):
        h.dispatch(0)
        steps.append(h.inflight[0][-1]["steps"])
        h.complete(0)
        levels.append(policy.level["a/0"])
    assert steps == [2, 4, 8, 8, 8]
    assert levels == [1, 2, 2, 2, 2]


def test_mlfq_new_request_runs_before_a_demoted_one():
    h = _harness("mlfq", quantum=1, mlfq_boost_s=100.0)
    h.submit("a", 3, 40, 1, 0, None)
    _run_plan(h)  # a/0 demoted to level 1
    h.submit("b", 3, 40, 1, 0, None)
    assert _run_plan(h) == ["b/1"]
    assert h.sched.get("a/0").timeline.preemptions == 1


def test_mlfq_boost_returns_everything_to_level_zero():
    h = _harness("mlfq", quantum=1, mlfq_boost_s=0.05)
    h.submit("a", 3, 40, 1, 0, None)
    _run_plan(h)
    _run_plan(h)
    assert h.sched.policy.level["a/0"] == 2
    h.clock.advance(0.05)
    _run_plan(h)
    assert h.sched.policy.num_boosts == 1
    assert h.sched.policy.level["a/0"] == 1  # boosted to 0, then used its level-0 quantum


def test_mlfq_boost_prevents_starvation_by_a_stream_of_short_requests():
    boost_s, step_s = 0.02, 0.001
    h = _harness("mlfq", quantum=1, mlfq_levels=2, mlfq_boost_s=boost_s)
    h.submit("long", 3, 100, 1, 0, None)
    _run_plan(h)  # demoted to level 1
    start = h.clock.now
    for _ in range(200):
        h.submit("short", 3, 1, 1, 0, None)  # one step, always level 0
        if "long/0" in _run_plan(h):
            break
    waited = h.clock.now - start
    assert waited <= boost_s + 2 * step_s, waited  # the boost period plus one round


def test_fair_serves_least_counter_and_weights_service():
    h = _harness("fair", quantum=2, fair_weights={"b": 2.0})
    h.submit("a", 3, 40, 1, 0, None)
    h.submit("b", 3, 40, 1, 0, None)
    counter = h.sched.policy.counter
    order = [_run_plan(h)[0].split("/")[0] for _ in range(6)]
    assert counter["a"] == 2 * order.count("a")
    assert counter["b"] == 2 * order.count("b") / 2
    assert order.count("b") == 2 * order.count("a")  # twice the weight, twice the service


def test_fair_counts_beams_and_lifts_a_new_agent_to_the_active_minimum():
    h = _harness("fair", quantum=3)
    h.submit("a", 3, 40, 2, 0, None)
    h.submit("b", 3, 40, 1, 0, None)
    for _ in range(4):
        _run_plan(h)
    counter = h.sched.policy.counter
    assert counter["a"] == 2 * 3 * 2  # two slices of 3 steps x 2 beams
    h.submit("c", 3, 40, 1, 0, None)
    assert counter["c"] == min(counter["a"], counter["b"])
    assert counter["c"] == counter["b"] == 6  # order a, b, b, a: b had 2 slices of 3
    assert _run_plan(h) == ["b/1"]  # tie on the counter: b queued first
    assert _run_plan(h) == ["c/2"]


def test_fair_returning_agent_keeps_a_higher_counter():
    h = _harness("fair", quantum=4)
    h.submit("a", 3, 8, 1, 0, None)
    _run_plan(h)
    _run_plan(h)  # a/0 finished with counter 8; a now inactive
    h.submit("b", 3, 40, 1, 0, None)
    h.submit("a", 3, 40, 1, 0, None)
    counter = h.sched.policy.counter
    assert counter["a"] == 8 and counter["b"] == 0
    assert _run_plan(h) == ["b/1"]
