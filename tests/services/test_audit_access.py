"""Access grants and the audit log: checks, idempotence, privacy of audit.query, persistence."""

from __future__ import annotations

import pytest

from syscalls.errors import ErrorCode, SyscallError


def denied(harness, caller: str, call: str, **args) -> bool:
    try:
        harness.call(caller, call, **args)
    except SyscallError as err:
        return err.code == ErrorCode.PERMISSION_DENIED
    return False


def test_read_grant_allows_reads_only_until_revoked(harness):
    harness.call("a", "storage.put", key="k", value="secret")
    assert denied(harness, "b", "storage.get", key="k", owner="a")
    gid = harness.call("a", "access.grant", grantee="b", resource="storage")["grant_id"]
    assert harness.call("a", "access.grant", grantee="b", resource="storage") == {"grant_id": gid}
    assert harness.call("b", "storage.get", key="k", owner="a")["value"] == "secret"
    assert denied(harness, "b", "storage.put", key="k", value="mine", owner="a")
    assert denied(harness, "b", "mem.get", key="k", owner="a")  # grants are per resource
    assert harness.call("a", "access.revoke", grantee="b", resource="storage") == {"revoked": 1}
    assert denied(harness, "b", "storage.get", key="k", owner="a")


def test_readwrite_grant_allows_both_and_list_shows_both_sides(harness):
    harness.call("a", "access.grant", grantee="b", resource="memory", mode="readwrite")
    harness.call("b", "mem.put", key="k", value=1, owner="a")
    assert harness.call("a", "mem.get", key="k") == {"value": 1, "was_evicted": False}
    grant = {"owner": "a", "grantee": "b", "resource": "memory", "mode": "readwrite"}
    assert [g | {"grant_id": 0} for g in harness.call("a", "access.list")["given"]] == [
        grant | {"grant_id": 0}
    ]
    assert harness.call("b", "access.list")["received"][0]["owner"] == "a"
    assert harness.call("b", "access.list")["given"] == []


def test_grant_needs_a_grantee_identity(harness):
    with pytest.raises(SyscallError) as info:
        harness.call("a", "access.grant", grantee="unclaimed", resource="storage")
    assert info.value.code == ErrorCode.NOT_FOUND and info.value.message.startswith("field 'grantee': ")
    assert harness.call("a", "access.list")["given"] == []
    harness.services.identities.create("unclaimed")
    assert harness.call("a", "access.grant", grantee="unclaimed", resource="storage")["grant_id"] >= 1


def test_grant_to_self_is_invalid(harness):
    with pytest.raises(SyscallError) as info:
        harness.call("a", "access.grant", grantee="a", resource="storage")
    assert info.value.code == ErrorCode.INVALID_ARGUMENT


def test_audit_records_grants_revocations_denials_with_privacy(harness):
    harness.call("a", "access.grant", grantee="b", resource="storage", mode="write")
    denied(harness, "c", "storage.list", owner="a")
    harness.call("a", "access.revoke", grantee="b", resource="storage")
    harness.services.audit.record("bad_token", agent="c", detail="mem.get: token wrong")
    events = harness.call("a", "audit.query", limit=100)["events"]
    assert [e["event"] for e in events] == ["grant", "deny", "revoke"]
    assert events[1] | {"time": 0, "seq": 0} == {
        "seq": 0,
        "time": 0,
        "event": "deny",
        "agent": "c",
        "target": "a",
        "resource": "storage",
        "detail": "read storage.list",
    }
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert [e["event"] for e in harness.call("b", "audit.query")["events"]] == ["grant", "revoke"]
    assert [e["event"] for e in harness.call("c", "audit.query", event="bad_token")["events"]] == [
        "bad_token"
    ]
    assert harness.call("a", "audit.query", agent="c")["events"][0]["event"] == "deny"
    assert harness.call("b", "audit.query", agent="c")["events"] == []  # not b's business


def test_operator_sees_every_event_including_anonymous_bad_tokens(harness):
    harness.call("a", "access.grant", grantee="b", resource="storage")
    harness.services.audit.record("bad_token", agent="", detail="mem.get: token absent")
    assert harness.call("a", "audit.query", event="bad_token")["events"] == []
    events = harness.call("operator", "audit.query", limit=100)["events"]
    assert [(e["event"], e["agent"]) for e in events] == [("grant", "a"), ("bad_token", "")]
    assert [e["event"] for e in harness.call("operator", "audit.query", agent="b")["events"]] == [
        "grant"
    ]


def test_audit_limit_since_and_persistence(harness):
    for i in range(6):
        harness.services.identities.create(f"g{i}")
    for i in range(5):
        harness.call("a", "access.grant", grantee=f"g{i}", resource="memory")
    newest = harness.call("a", "audit.query", limit=2)["events"]
    assert [e["target"] for e in newest] == ["g3", "g4"]
    since = harness.call("a", "audit.query", limit=100)["events"][3]["time"]
    assert all(e["time"] >= since for e in harness.call("a", "audit.query", since=since)["events"])
    harness.reopen()
    assert len(harness.call("a", "audit.query", limit=100)["events"]) == 5
    given = harness.call("a", "access.list")["given"]  # grants are stored with the identities
    assert [(g["grant_id"], g["grantee"]) for g in given] == [(i + 1, f"g{i}") for i in range(5)]
    assert harness.call("a", "access.grant", grantee="g0", resource="memory") == {"grant_id": 1}
    harness.call("a", "access.grant", grantee="g5", resource="memory")
    assert harness.call("a", "audit.query", limit=1)["events"][0]["seq"] == 6
    harness.services.check_integrity()
