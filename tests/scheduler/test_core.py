"""Scheduler API edge cases: wire shapes, admission, cancel, dead workers, evictions, errors."""

from __future__ import annotations

import pytest

from kernel.scheduler import (
    DuplicateRequest,
    PlanMismatch,
    PlanResult,
    RequestTooLarge,
    SchedConfig,
    SchedulerError,
    SeqRequest,
    SeqState,
    make_scheduler,
)
from tests.scheduler.harness import Harness


def _harness(num_workers: int = 1, **kw) -> Harness:
    kw.setdefault("policy", "rr")
    return Harness(SchedConfig(**kw), num_workers)


def test_plan_wire_shape_is_the_documented_plan_message():
    sched = make_scheduler(SchedConfig(quantum=4), kv_bytes_per_token=2)
    sched.add_worker(7)
    sched.submit(SeqRequest("a/0", "a", 0.0, 3, 5), [1, 2, 3], {"max_new_tokens": 5}, 0.0)
    plan = sched.next_plan(7, 0.0)
    assert plan.to_wire() == {
        "type": "plan",
        "plan_id": plan.plan_id,
        "evict": [],
        "load": [
            {
                "rid": "a/0",
                "mode": "prefill",
                "prompt_ids": [1, 2, 3],
                "params": {"max_new_tokens": 5},
            }
        ],
        "decode": ["a/0"],
        "steps": 4,
        "checkpoint": [],
    }


def test_swap_and_recompute_evict_then_restore_through_lmdb():
    for preempt, mode in (("swap", "swap"), ("recompute", "drop")):
        # 2 bytes/token, budget 35 tokens: two 15-token requests cannot both reach 19
        h = _harness(quantum=4, max_batch=1, kv_budget_bytes=70, preempt=preempt)
        h.submit("a", 15, 10, 1, 0, None)
        h.submit("b", 15, 10, 1, 0, None)
        h.dispatch(0), h.complete(0)  # a/0 resident (19 tokens)
        h.dispatch(0)
        assert h.inflight[0][-1]["evict"] == [{"rid": "a/0", "mode": mode}]
        assert h.sched.worker_of(h.sched.get("a/0")) == 0  # its KV leaves worker 0 in this plan
        h.complete(0)
        a = h.sched.get("a/0")
        assert h.sched.worker_of(a) is None
        assert a.has_snapshot and a.is_snapshot_kv == (mode == "swap") and a.residency is None
        assert h.sim.lmdb["a/0"].has_kv == (mode == "swap")
        h.dispatch(0)
        assert {"rid": "a/0", "mode": "restore"} in h.inflight[0][-1]["load"]
        h.complete(0)
        assert "a/0" not in h.sim.lmdb and not h.sched.get("a/0").has_snapshot
        assert a.timeline.snapshot_durations_s and a.timeline.restore_durations_s
        assert [(w, d) for w, d, _, _ in a.timeline.swaps] == [(0, "out"), (0, "in")]
        assert a.timeline.swaps[0][2] <= a.timeline.swaps[1][2]
        h.drain()


def test_request_that_can_never_fit_is_rejected_at_submit():
    sched = make_scheduler(SchedConfig(kv_budget_bytes=100), kv_bytes_per_token=2)
    req = SeqRequest("a/0", "a", 0.0, 10, 20, num_beams=2)  # 30 tokens x 2 beams x 2 = 120
    with pytest.raises(RequestTooLarge, match="needs 120 KV bytes") as info:
        sched.submit(req, list(range(10)), {}, 0.0)
    assert isinstance(info.value, ValueError) and info.value.code == "CONTEXT_TOO_LONG"
    assert sched.requests() == []


def test_duplicate_and_malformed_requests_are_refused():
    sched = make_scheduler(SchedConfig(), kv_bytes_per_token=2)
    sched.submit(SeqRequest("a/0", "a", 0.0, 2, 2), [1, 2], {}, 0.0)
    with pytest.raises(DuplicateRequest):
        sched.submit(SeqRequest("a/0", "a", 0.0, 2, 2), [1, 2], {}, 0.0)
    with pytest.raises(SchedulerError, match="prompt_len"):
        sched.submit(SeqRequest("a/1", "a", 0.0, 3, 2), [1, 2], {}, 0.0)
    with pytest.raises(SchedulerError):
        sched.submit(SeqRequest("a/2", "a", 0.0, 2, 0), [1, 2], {}, 0.0)


def test_cancel_waiting_resident_swapped_and_unknown():
    h = _harness(quantum=1, max_batch=1, kv_budget_bytes=80)
    for _ in range(3):
        h.submit("a", 15, 10, 1, 0, None)
    h.dispatch(0), h.complete(0)  # a/0 resident
    h.dispatch(0), h.complete(0)  # a/0 still fits: both resident
    h.dispatch(0), h.complete(0)  # a/2 loaded: a/1 (last in rr order) swapped out
    states = {r.rid: (r.residency, r.has_snapshot) for r in h.sched.requests()}
    assert states == {"a/0": (0, False), "a/1": (None, True), "a/2": (0, False)}
    swapped, resident = h.sched.cancel("a/1", 0.0), h.sched.cancel("a/0", 0.0)
    assert (swapped.completion.needs_free, swapped.completion.free_worker) == (True, None)
    assert (resident.completion.needs_free, resident.completion.free_worker) == (True, 0)
    assert swapped.completion.request.state is SeqState.CANCELLED
    assert not h.sched.cancel("a/0", 0.0).is_found
    h.submit("b", 3, 3, 1, 0, None)
    waiting = h.sched.cancel("b/3", 0.0)
    assert waiting.completion is not None and not waiting.completion.needs_free
    h.sched.check_integrity()


def test_cancel_of_a_running_request_completes_when_its_plan_returns():
    h = _harness(quantum=2)
    h.submit("a", 3, 10, 1, 0, None)
    h.dispatch(0)
    effect = h.sched.cancel("a/0", 0.0)
    assert effect.is_found and effect.is_deferred and effect.completion is None
    h.cancelled.add("a/0")
    h.complete(0)
    done = h.completed["a/0"]
    assert done.request.state is SeqState.CANCELLED and (done.needs_free, done.free_worker) == (
        True,
        0,
    )
    assert not h.sim.workers[0] and not h.sched.requests()


def test_remove_worker_requeues_everything_it_held_from_the_prompt():
    h = _harness(num_workers=2, quantum=2, max_batch=2)
    h.submit("a", 3, 10, 1, 0, None)
    h.dispatch(0), h.complete(0)  # a/0 resident on 0, 2 tokens made
    h.submit("b", 3, 10, 1, 0, None)
    h.dispatch(0)  # a/0 decoded, b/1 prefilled on 0, in flight
    assert h.sched.get("a/0").num_generated == 2
    loss = h.sched.remove_worker(0, 1.0)
    assert loss.completions == [] and loss.recovered == {"a/0": 0, "b/1": 0}
    for rid in ("a/0", "b/1"):
        req = h.sched.get(rid)
        assert req.state is SeqState.WAITING and req.num_generated == 0 and req.num_recoveries == 1
        assert req.timeline.recovery_s == [1.0] and req.timeline.num_output_tokens == 0
    h.sched.check_integrity()
    plan = h.sched.next_plan(1, 1.0)
    assert [(s.rid, s.mode, s.prompt_ids) for s in plan.load] == [("a/0", "prefill", [0, 1, 2]), ("b/1", "prefill", [0, 1, 2])]
    with pytest.raises(SchedulerError, match="unknown worker"):
        h.sched.next_plan(0, 1.0)


def test_a_dead_worker_s_request_resumes_from_its_checkpoint():
    h = _harness(num_workers=2, quantum=2, max_batch=1, checkpoint_every=3)
    h.submit("a", 3, 10, 1, 0, None)
    h.dispatch(0), h.complete(0)  # 2 steps: no checkpoint yet
    assert h.sched.get("a/0").checkpoint is None
    assert h.dispatch(0) and h.inflight[0][-1]["checkpoint"] == [{"rid": "a/0", "key": "a/0#c1"}]
    h.complete(0)  # 4 steps: checkpoint 1 holds them
    req = h.sched.get("a/0")
    assert (req.checkpoint, req.checkpoint_tokens) == (1, 4) and "a/0#c1" in h.sim.lmdb
    h.dispatch(0)  # steps 5-6 in flight, then the worker dies
    loss = h.sched.remove_worker(0, 1.0)
    assert loss.recovered == {"a/0": 4}
    assert req.state is SeqState.READY and req.num_generated == 4 and req.timeline.num_output_tokens == 4
    plan = h.sched.next_plan(1, 1.0)
    assert [(s.rid, s.mode, s.source) for s in plan.load] == [("a/0", "restore", 1)]
    h.sched.check_integrity()


def test_remove_worker_completes_a_pending_cancel():
    h = _harness(num_workers=2, quantum=2, max_batch=2)
    h.submit("a", 3, 10, 1, 0, None)
    h.dispatch(0)
    assert h.sched.cancel("a/0", 0.5).is_deferred
    loss = h.sched.remove_worker(0, 1.0)
    assert loss.recovered == {} and [c.request.state for c in loss.completions] == [SeqState.CANCELLED]
    assert loss.completions[0].needs_free and not h.sched.requests()


def test_a_failed_load_fails_only_that_request():
    h = _harness(quantum=2, max_batch=2)
    h.submit("a", 3, 4, 1, 0, None)
    h.submit("b", 3, 4, 1, 0, None)
    h.dispatch(0)
    done = h.sim.execute(0, h.inflight.pop(0)[0])
    done["loaded"][0]["error"] = {"code": "SNAPSHOT_INVALID", "message": "bad checksum"}
    out = h.sched.on_plan_done(0, PlanResult.from_wire(done), h.clock.now)
    assert [(c.request.rid, c.request.state, c.free_worker) for c in out] == [
        ("a/0", SeqState.FAILED, 0)
    ]
    assert out[0].request.error["code"] == "SNAPSHOT_INVALID"
    assert h.sched.get("b/1").num_generated == 2
    h.sched.check_integrity()


def test_a_plan_done_for_another_plan_is_refused():
    h = _harness(lookahead=False)
    h.submit("a", 3, 4, 1, 0, None)
    h.dispatch(0)
    done = h.sim.execute(0, h.inflight[0][0])
    done["plan_id"] += 1
    with pytest.raises(PlanMismatch):
        h.sched.on_plan_done(0, PlanResult.from_wire(done), 0.0)
    with pytest.raises(SchedulerError, match="outstanding"):
        h.sched.next_plan(0, 0.0)


def test_plan_result_parser_tolerates_extra_fields_and_names_missing_ones():
    msg = {
        "type": "plan_done",
        "worker_id": 1,
        "plan_id": 3,
        "t_start": 1,
        "t_end": 2,
        "new": 1,
        "evicted": [],
        "loaded": [],
        "results": [{"rid": "a/0", "num_steps": 2, "future": True}],
    }
    result = PlanResult.from_wire(msg)
    assert result.results["a/0"].num_steps == 2 and result.t_end == 2.0
    del msg["t_end"]
    with pytest.raises(ValueError, match="t_end"):
        PlanResult.from_wire(msg)


def test_preemption_counts_only_unfinished_requests_leaving_the_batch():
    h = _harness(quantum=2, max_batch=1)
    h.submit("a", 3, 2, 1, 0, None)  # finishes in its first slice
    h.submit("b", 3, 4, 1, 0, None)
    h.submit("c", 3, 4, 1, 0, None)
    h.drain()
    preemptions = {rid: c.request.timeline.preemptions for rid, c in h.completed.items()}
    # plans: a (finishes), b, c (b preempted), b (finishes; c preempted), c
    assert preemptions == {"a/0": 0, "b/1": 1, "c/2": 1}


def test_check_integrity_reports_corruption():
    h = _harness()
    h.submit("a", 3, 40, 1, 0, None)
    h.dispatch(0), h.complete(0)
    req = h.sched.get("a/0")
    req.has_snapshot = True
    with pytest.raises(AssertionError, match="a/0: READY must be either resident or snapshotted"):
        h.sched.check_integrity()
    req.has_snapshot, req.state = False, SeqState.RUNNING
    with pytest.raises(AssertionError, match="RUNNING outside its plan"):
        h.sched.check_integrity()


def test_config_is_validated():
    with pytest.raises(ValueError, match="preempt"):
        SchedConfig(preempt="discard")
    with pytest.raises(ValueError, match="max_batch"):
        SchedConfig(max_batch=0)
