"""The request journal (kernel/llm/journal.py) against a plain model of what it must hold: what a
kernel started after a crash recovers is exactly what the dead one accepted and produced."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.llm.journal import Journal, ParkedReply

RIDS = ["a/1", "a/10", "a/1#x", "b/1"]  # prefixes of one another: entries must not mix
ops = st.lists(st.one_of(
    st.tuples(st.just("accept"), st.sampled_from(RIDS)),
    st.tuples(st.just("produce"), st.sampled_from(RIDS), st.lists(st.integers(0, 2**32 - 1), max_size=300)),
    st.tuples(st.just("checkpoint"), st.sampled_from(RIDS), st.integers(1, 9)),
    st.tuples(st.just("leave"), st.sampled_from(RIDS), st.booleans()),
), max_size=30)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_recover_returns_what_was_journaled(tmp_path_factory, steps):
    path = tmp_path_factory.mktemp("j") / "journal.lmdb"
    j = Journal(path)
    live: dict[str, dict] = {}
    parked: dict[str, dict] = {}
    for step in steps:
        kind, rid = step[0], step[1]
        if kind == "accept":
            j.accept(rid, rid.split("/")[0], {"prompt": rid, "stream": True})
            live[rid] = {"tokens": [], "checkpoint": None}
            parked.pop(rid, None)
        elif kind == "produce":
            j.produced({rid: step[2]})
            if rid in live:
                live[rid]["tokens"] += step[2]
        elif kind == "checkpoint":
            j.checkpointed(rid, f"k.{rid}", step[2], 5)
            if rid in live:
                live[rid]["checkpoint"] = (f"k.{rid}", step[2], 5)
        elif kind == "leave":
            reply = {"ok": True, "result": {"token_ids": [1]}} if step[2] else None
            j.leave(rid, ParkedReply(reply, True, 1.0) if reply else None)
            if rid in live and reply:
                parked[rid] = reply
            live.pop(rid, None)
    j.close()
    found, replies = Journal(path).recover()  # a new kernel
    assert {f.rid: {"tokens": f.delivered, "checkpoint": f.checkpoint} for f in found} == live
    assert all(f.agent == f.rid.split("/")[0] and f.args["prompt"] == f.rid for f in found)
    assert {rid: r.reply for rid, r in replies.items() if rid in parked} == parked


def test_replies_expire_after_the_grace_period(tmp_path):
    j = Journal(tmp_path / "journal.lmdb")
    for rid, t in (("a/old", 100.0), ("a/new", 190.0)):
        j.accept(rid, "a", {})
        j.leave(rid, ParkedReply({"ok": False, "error": {"code": "CANCELLED", "message": ""}}, False, t))
    assert j.expire(60.0, now_unix=200.0) == ["a/old"]
    assert set(j.recover()[1]) == {"a/new"}
    assert j.counts() == {"requests": 0, "tokens": 0, "replies": 1}
