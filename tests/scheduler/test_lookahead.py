"""Lookahead on the fake clock: rr's next plan, continuations and successors (fifo, srpt, las,
priority) and their revocation when a request arrives that would take a member's place."""

from __future__ import annotations

import pytest

from kernel.scheduler import PlanMismatch, PlanResult, SchedConfig, SchedulerError, SeqState
from tests.scheduler.harness import Harness


def _harness(num_workers: int = 1, **kw) -> Harness:
    kw.setdefault("policy", "rr")
    return Harness(SchedConfig(**kw), num_workers)


def test_rr_lookahead_sends_the_next_slice_while_one_runs():
    """rr, batch 1: the plan after a/0's slice is b/1's (a/0 goes behind it), sent while a/0's
    runs; a third is refused; a/0's preemption is recorded when its slice returns, not before."""
    h = _harness(quantum=2, max_batch=1)
    h.submit("a", 3, 6, 1, 0, None)
    h.submit("b", 3, 6, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0)
    first, second = h.inflight[0]
    assert (first["decode"], second["decode"]) == (["a/0"], ["b/1"])
    assert not h.sched.accepts_plan(0)
    with pytest.raises(SchedulerError, match="outstanding"):
        h.sched.next_plan(0, 0.0)
    assert h.sched.get("a/0").timeline.preemption_s == []
    h.clock.advance(0.5)
    assert h.complete(0)
    assert h.sched.get("a/0").timeline.preemption_s == [h.clock.now] and h.clock.now > 0.5
    assert h.dispatch(0) and h.inflight[0][-1]["decode"] == ["a/0"]  # the next lookahead: a/0 again
    h.drain()


@pytest.mark.parametrize("case", ["plas", "no-lookahead", "batch-not-full", "would-evict", "no-room", "nobody-else"])
def test_no_lookahead_where_it_could_differ_from_the_policy(case):
    """A lookahead plan is made only where it is exactly the plan the policy would choose after
    the running one: rr, a full batch, no eviction, someone else to run (plas never looks ahead)."""
    kw = {"plas": {"policy": "plas"}, "no-lookahead": {"lookahead": False}, "batch-not-full": {"max_batch": 2},
          "would-evict": {"kv_budget_bytes": 40 * 2}, "no-room": {"kv_budget_bytes": 40 * 2}}.get(case, {})
    h = _harness(**{"quantum": 2, "max_batch": 1, **kw})
    h.submit("a", 3, 10, 1, 0, None)
    if case == "would-evict":  # c/1 runs (lookahead behind a/0); b/2 fits only if a/0, back from its slice, is evicted
        h.submit("c", 3, 10, 1, 0, None)
        assert h.dispatch(0) and h.dispatch(0)
        h.submit("b", 30, 2, 1, 0, None)
        assert h.complete(0) and h.inflight[0][0]["decode"] == ["c/1"]
    elif case == "no-room":  # b/1 fits alone, but not beside a/0 while a/0 runs (nothing idle to evict)
        h.submit("b", 36, 2, 1, 0, None)
        assert h.dispatch(0)
    else:
        if case != "nobody-else":
            h.submit("b", 3, 10, 1, 0, None)
        assert h.dispatch(0)
    assert not h.dispatch(0) and len(h.inflight[0]) == 1
    h.drain()


def test_fifo_lookahead_continues_the_running_batch():
    """fifo: while a full batch runs, its next slice is sent (the same batch: newcomers rank
    behind it); the request stays RUNNING across both; a cancel waits for the last of them."""
    h = _harness(policy="fifo", fifo_slice_steps=2, max_batch=1)
    h.submit("a", 3, 10, 1, 0, None)
    assert h.dispatch(0)
    h.submit("b", 3, 10, 1, 0, None)
    assert h.dispatch(0)
    assert [msg["decode"] for msg in h.inflight[0]] == [["a/0"], ["a/0"]]
    assert h.inflight[0][1]["load"] == [] and h.inflight[0][1]["evict"] == []
    h.cancel("a/0")
    assert h.complete(0)
    a = h.sched.get("a/0")
    assert a is not None and a.state is SeqState.RUNNING and a.num_generated == 2
    assert h.complete(0) and h.sched.get("a/0") is None and "a/0" in h.completed
    h.drain()


@pytest.mark.parametrize("case", ["stops-early", "finishes-surely", "batch-not-full"])
def test_fifo_continuation_cases(case):
    """A member that stops early (EOS) leaves when its plan returns and the continuation's answer
    for it is dropped; one that surely finishes in the running slice, or a batch with room for
    a waiting request, gets no continuation."""
    h = _harness(policy="fifo", fifo_slice_steps=2, max_batch=2 if case == "batch-not-full" else 1)
    h.submit("a", 3, 2 if case == "finishes-surely" else 10, 1, 0, 1 if case == "stops-early" else None)
    assert h.dispatch(0)
    if case == "batch-not-full":
        h.submit("b", 3, 4, 1, 0, None)
    if case != "stops-early":
        assert not h.dispatch(0) and len(h.inflight[0]) == 1
        h.drain()
        return
    assert h.dispatch(0)
    h.submit("b", 3, 4, 1, 0, None)
    assert h.complete(0) and h.completed["a/0"].request.num_generated == 1
    h.check()  # a/0 is gone but still named by the continuation the worker runs next
    assert h.complete(0)  # the continuation: the worker no longer holds a/0
    assert h.dispatch(0) and h.inflight[0][0]["decode"] == ["b/1"]
    h.drain()


@pytest.mark.parametrize("is_revoke_first", [True, False])
def test_srpt_continuation_is_revoked_by_a_shorter_arrival(is_revoke_first):
    """srpt, batch 1: a/0 alone runs on in a continuation; b/1, shorter than a/0 will be after
    its slice, revokes it. A worker that had not started it drops it (a/0 is READY after one
    slice, b/1 runs next); one that had runs it (a/0 gets both slices, then b/1)."""
    h = _harness(policy="srpt", quantum=2, max_batch=1)
    h.submit("a", 3, 10, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0)
    assert [msg["decode"] for msg in h.inflight[0]] == [["a/0"], ["a/0"]]
    h.submit("b", 3, 5, 1, 0, None)  # 5 < 10 - 2 (and 10 - 4): b/1 outranks a/0 once back
    assert h.revoking == {h.inflight[0][1]["plan_id"]}
    assert not h.sched.accepts_plan(0)
    assert h.complete(0)
    assert not h.sched.accepts_plan(0) and h.sched.get("a/0").state is SeqState.RUNNING
    assert h.complete(0, is_revoke_first)
    a = h.sched.get("a/0")
    assert (a.state, a.num_generated) == (SeqState.READY, 2 if is_revoke_first else 4)
    assert h.num_revoked == int(is_revoke_first)
    assert h.dispatch(0) and h.inflight[0][0]["decode"] == ["b/1"]
    h.drain()
    assert h.completed["a/0"].request.timeline.preemptions == 1


@pytest.mark.parametrize("policy,later", [("srpt", {"max_new": 8}), ("las", {}), ("priority", {"priority": 0})])
def test_no_continuation_where_a_waiting_request_outranks_the_batch(policy, later):
    """A continuation is made only while every member, back from its slice, still ranks ahead of
    every waiting request: srpt (a tie goes to the waiting one: a requeued member is behind it),
    las (b/1 has less service than a/0 will have), priority (b/1's deadline is earlier)."""
    h = _harness(policy=policy, quantum=2, max_batch=1, priority_aging_s=1.0)
    h.submit("a", 3, 10, 1, 3, None)
    assert h.dispatch(0)
    h.submit("b", 3, later.get("max_new", 10), 1, later.get("priority", 3), None)
    assert not h.dispatch(0) and len(h.inflight[0]) == 1
    assert h.complete(0) and h.dispatch(0) and h.inflight[0][0]["decode"] == ["b/1"]
    h.drain()


@pytest.mark.parametrize("policy", ["fifo", "las", "priority"])
def test_continuation_with_room_is_revoked_by_any_arrival(policy):
    """batch 2 with one member and nobody else: it runs on; any arrival would join the batch."""
    h = _harness(policy=policy, quantum=2, fifo_slice_steps=2, max_batch=2)
    h.submit("a", 3, 10, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0) and not h.revoking
    h.submit("b", 3, 10, 1, 0, None)
    assert len(h.revoking) == 1
    assert h.complete(0) and h.complete(0)
    assert h.dispatch(0) and sorted(h.inflight[0][0]["decode"]) == ["a/0", "b/1"]
    h.drain()


def test_a_revoked_answer_to_a_plan_not_revoked_is_a_mismatch():
    h = _harness(policy="srpt", quantum=2, max_batch=1)
    h.submit("a", 3, 10, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0)
    plan_id = h.inflight[0][0]["plan_id"]
    done = {"worker_id": 0, "plan_id": plan_id, "t_start": 0.0, "t_end": 0.0, "revoked": True}
    with pytest.raises(PlanMismatch, match="not revoked"):
        h.sched.on_plan_done(0, PlanResult.from_wire(done), 0.0)
    h.check()
    h.drain()


def test_a_cancel_waits_for_a_revoked_continuation():
    """A cancel of a member of a continuation being revoked completes when the revoked answer comes."""
    h = _harness(policy="srpt", quantum=2, max_batch=1)
    h.submit("a", 3, 10, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0)
    h.submit("b", 3, 3, 1, 0, None)
    h.cancel("a/0")
    assert h.complete(0) and "a/0" not in h.completed
    assert h.complete(0) and h.completed["a/0"].request.state is SeqState.CANCELLED
    h.drain()


def test_continuation_of_a_continuation_leaves_out_a_member_that_stopped_early():
    """fifo, batch 2: a/0 stops early in the first slice; the continuation after the second
    carries b/1 alone (nobody else waits), and the worker's answer for a/0 is dropped."""
    h = _harness(policy="fifo", fifo_slice_steps=2, max_batch=2)
    h.submit("a", 3, 10, 1, 0, 1)
    h.submit("b", 3, 10, 1, 0, None)
    assert h.dispatch(0) and h.dispatch(0) and h.complete(0)
    assert "a/0" in h.completed and h.inflight[0][0]["decode"] == ["a/0", "b/1"]
    assert h.dispatch(0) and h.inflight[0][1]["decode"] == ["b/1"]
    h.drain()


@pytest.mark.parametrize("policy", ["srpt", "fifo", "las", "priority"])
def test_successor_is_sent_while_a_batch_that_surely_finishes_runs(policy):
    """a/0 finishes in its slice: the plan after it, the policy's pick among the others (b/1,
    shorter, older, less served, earlier), loads and runs it, sent while a/0 runs; a third
    plan is refused; a/0 counts no preemption."""
    h = _harness(policy=policy, quantum=2, fifo_slice_steps=2, max_batch=1)
    h.submit("a", 3, 2, 1, 0, None)
    assert h.dispatch(0)
    h.submit("b", 3, 6, 1, 0, None)
    h.submit("c", 3, 8, 1, 1, None)
    assert h.dispatch(0) and not h.sched.accepts_plan(0)
    successor = h.inflight[0][1]
    assert successor["is_successor"] and successor["decode"] == ["b/1"]
    assert [s["rid"] for s in successor["load"]] == ["b/1"] and successor["evict"] == []
    assert h.complete(0) and "a/0" in h.completed
    assert h.complete(0) and h.sched.get("b/1").num_generated == 2
    h.drain()
    assert h.completed["a/0"].request.timeline.preemptions == 0


@pytest.mark.parametrize("is_revoke_first", [True, False])
def test_srpt_successor_is_revoked_by_a_shorter_arrival(is_revoke_first):
    """b/1 is sent to follow a/0, which finishes; c/2, shorter, revokes it. A worker that had not
    started it drops it: b/1 is WAITING again, not resident, never scheduled, and c/2 runs next;
    one that had runs it (b/1 then waits behind c/2, preempted once)."""
    h = _harness(policy="srpt", quantum=2, max_batch=1)
    h.submit("a", 3, 2, 1, 0, None)
    assert h.dispatch(0)
    h.submit("b", 3, 6, 1, 0, None)
    assert h.dispatch(0) and h.sched.get("b/1").timeline.first_scheduled_s is not None
    h.clock.advance(0.1)
    h.submit("c", 3, 3, 1, 0, None)
    assert h.revoking == {h.inflight[0][1]["plan_id"]}
    assert h.complete(0) and "a/0" in h.completed and not h.sched.accepts_plan(0)
    assert h.complete(0, is_revoke_first)
    b = h.sched.get("b/1")
    if is_revoke_first:
        assert (b.state, b.residency, b.num_generated) == (SeqState.WAITING, None, 0)
        assert b.timeline.first_scheduled_s is None and h.sched.resident_bytes(0) == 0
    else:
        assert (b.state, b.residency, b.num_generated) == (SeqState.READY, 0, 2)
    assert h.dispatch(0) and h.inflight[0][0]["decode"] == ["c/2"]
    h.drain()
    assert h.completed["b/1"].request.timeline.preemptions == (0 if is_revoke_first else 1)
    assert h.completed["b/1"].request.timeline.first_scheduled_s > 0.1 or not is_revoke_first


def test_fifo_successor_stays_when_later_requests_arrive():
    """fifo, batch 1: the oldest waiting request follows a/0 whatever arrives after it."""
    h = _harness(policy="fifo", fifo_slice_steps=2, max_batch=1)
    h.submit("a", 3, 2, 1, 0, None)
    assert h.dispatch(0)
    h.submit("b", 3, 6, 1, 0, None)
    assert h.dispatch(0)
    h.submit("c", 3, 1, 1, 0, None)
    assert not h.revoking
    h.drain()


@pytest.mark.parametrize("case", ["room", "no-room"])
def test_successor_with_room_or_without_budget(case):
    """room: batch 2, b/1 alone follows a/0; c/2 would join it, so it is revoked and both run
    next. no-room: b/1 fits alone but not beside a/0 while a/0 runs: no successor."""
    h = _harness(policy="fifo", fifo_slice_steps=2, max_batch=2 if case == "room" else 1,
                 kv_budget_bytes=None if case == "room" else 40 * 2)
    h.submit("a", 3, 2, 1, 0, None)
    assert h.dispatch(0)
    h.submit("b", 36 if case == "no-room" else 3, 6, 1, 0, None)
    if case == "no-room":
        assert not h.dispatch(0) and len(h.inflight[0]) == 1
        h.drain()
        return
    assert h.dispatch(0) and h.inflight[0][1]["decode"] == ["b/1"] and not h.revoking
    h.submit("c", 3, 6, 1, 0, None)
    assert len(h.revoking) == 1
    assert h.complete(0) and h.complete(0)
    assert h.dispatch(0) and sorted(h.inflight[0][0]["decode"]) == ["b/1", "c/2"]
    h.drain()
