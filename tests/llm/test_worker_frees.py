"""A free sent to a worker counts as done only once a plan sent after it is answered (the worker
works in order); until then the kernel resends it elsewhere if that worker dies."""

from __future__ import annotations

from kernel.llm.workers import WorkerHandle


def test_a_free_is_confirmed_by_the_answer_to_a_later_plan():
    w = WorkerHandle(0, None, 0.0)  # type: ignore[arg-type]  # no process needed
    w.free_sent(["a"])
    w.plan_sent(1)
    w.free_sent(["b"])
    assert [keys for _, keys in w.unconfirmed_frees] == [["a"], ["b"]]
    w.plan_sent(2)
    w.plan_answered()  # plan 1, sent after "a": "a" is done, "b" (sent after plan 1) may not be
    assert [keys for _, keys in w.unconfirmed_frees] == [["b"]] and w.plan_ids == [2]
    w.plan_answered()
    assert w.unconfirmed_frees == [] and w.plan_ids == []
    w.free_sent(["c"])  # an idle worker's free stays unconfirmed until its next plan is answered
    assert [keys for _, keys in w.unconfirmed_frees] == [["c"]]
