"""Kernel services (memory, storage, access, audit, tools) through a live kernel process,
real clients and `aiosim call`: quotas, restarts, grants, denials and misbehaving tools."""

from __future__ import annotations

import json
import time

import pytest

from agents.sdk import Client, KernelError
from tests.kernelproc import KernelProc, run_cli

ENTRY = "x" * 1000  # packs to 1003 bytes; with a 2-char key, 1005 bytes against a 4096 quota


def call_cli(
    address: str,
    syscall: str,
    args: dict | None = None,
    *,
    agent: str | None = None,
    token: str | None = None,
) -> tuple[int, dict]:
    """`aiosim call`; returns (exit code, the JSON it printed)."""
    flags = ["--token", token] if token else ["--agent", agent] if agent else []
    out = run_cli(
        "call", "--address", address, *flags, syscall, json.dumps(args or {}), timeout_s=30
    )
    return out.returncode, json.loads(out.stdout)


def error_code(fn, *args, **kwargs) -> str:
    with pytest.raises(KernelError) as e:
        fn(*args, **kwargs)
    return e.value.code


# ---- memory ---------------------------------------------------------------------------------


def test_memory_quota_evicts_lru_to_storage_and_finds_it_again(kernel):
    with kernel.client("mem-lru") as c:
        evicted = [c.mem_put(key=f"k{i}", value=ENTRY)["evicted"] for i in range(6)]
        assert evicted == [[], [], [], [], ["k0"], ["k1"]]
        listing = c.mem_list()
        assert listing["quota_bytes"] == 4096 and listing["used_bytes"] == 4 * 1005
        assert {e["key"]: e["is_resident"] for e in listing["entries"]} == {
            "k0": False,
            "k1": False,
            "k2": True,
            "k3": True,
            "k4": True,
            "k5": True,
        }
        # an evicted entry is found transparently, becomes resident, and pushes out the LRU one
        assert c.mem_get(key="k0") == {"value": ENTRY, "was_evicted": True}
        assert c.mem_get(key="k0") == {"value": ENTRY, "was_evicted": False}
        resident = {e["key"] for e in c.mem_list()["entries"] if e["is_resident"]}
        assert resident == {"k0", "k3", "k4", "k5"}
        assert error_code(c.mem_put, key="big", value="y" * 5000) == "QUOTA_EXCEEDED"


def test_memory_is_freed_when_the_agent_exits(kernel):
    with kernel.client("mem-exit") as c:
        for i in range(5):
            c.mem_put(key=f"k{i}", value=ENTRY)
        assert any(not e["is_resident"] for e in c.mem_list()["entries"])
    with kernel.client("mem-exit") as again:  # same name, a new agent: nothing carried over
        assert again.mem_list() == {"entries": [], "used_bytes": 0, "quota_bytes": 4096}
        assert error_code(again.mem_get, key="k4") == "NOT_FOUND"
        assert error_code(again.mem_get, key="k0") == "NOT_FOUND"  # the evicted copy went too
        # storage (persistent) is not where memory lives: the stash is not visible as keys
        assert again.storage_list()["keys"] == []


# ---- storage across a real restart ----------------------------------------------------------


def test_storage_versions_survive_a_kernel_restart(tmp_path):
    state = tmp_path / "state"
    k = KernelProc(state, workers=0).wait_ready(30)
    try:
        code, reg = call_cli(k.address, "proc.register", {"name": "keeper"})
        assert code == 0
        token = reg["result"]["token"]
        steps = [
            ("storage.put", {"key": "prefs", "value": {"genre": "jazz"}}, {"version": 1}),
            ("storage.put", {"key": "prefs", "value": {"genre": "blues"}}, {"version": 2}),
            ("storage.delete", {"key": "prefs"}, {"deleted": True, "version": 3}),
            ("storage.rollback", {"key": "prefs", "version": 1}, {"version": 4}),
        ]
        for syscall, args, expected in steps:
            code, out = call_cli(k.address, syscall, args, token=token)
            assert (code, out) == (0, {"ok": True, "result": expected}), syscall
        code, out = call_cli(k.address, "storage.get", {"key": "absent"}, token=token)
        assert code == 1 and out["error"]["code"] == "NOT_FOUND"
    finally:
        assert k.stop() == 0
    assert not k.leftovers()

    k2 = KernelProc(state, workers=0).wait_ready(30)
    try:
        code, out = call_cli(k2.address, "storage.versions", {"key": "prefs"}, agent="keeper")
        assert code == 0
        rows = out["result"]["versions"]
        assert [(v["version"], v["is_deleted"]) for v in rows] == [
            (1, False),
            (2, False),
            (3, True),
            (4, False),
        ]
        code, out = call_cli(k2.address, "storage.get", {"key": "prefs"}, agent="keeper")
        assert (code, out["result"]) == (0, {"value": {"genre": "jazz"}, "version": 4})
        code, out = call_cli(
            k2.address, "storage.get", {"key": "prefs", "version": 2}, agent="keeper"
        )
        assert (code, out["result"]) == (0, {"value": {"genre": "blues"}, "version": 2})
        code, out = call_cli(
            k2.address, "storage.get", {"key": "prefs", "version": 9}, agent="keeper"
        )
        assert code == 1 and out["error"]["code"] == "NOT_FOUND"
        # the old token died with the old kernel
        code, out = call_cli(k2.address, "storage.get", {"key": "prefs"}, token=token)
        assert code == 1 and out["error"]["code"] == "UNAUTHENTICATED"
    finally:
        assert k2.stop() == 0
    assert not k2.leftovers()
    assert "Traceback" not in (state / "kernel.log").read_text()


# ---- access control and audit ---------------------------------------------------------------


def test_grants_allow_reads_only_until_revoked_and_denials_are_audited(kernel):
    with kernel.client("acl-owner") as a, kernel.client("acl-peer") as b:
        a.storage_put(key="plan", value="north")
        a.mem_put(key="note", value="secret")
        denials = 0
        for resource in ("storage", "memory"):
            read = b.storage_get if resource == "storage" else b.mem_get
            write = b.storage_put if resource == "storage" else b.mem_put
            key = "plan" if resource == "storage" else "note"
            assert error_code(read, key=key, owner="acl-owner") == "PERMISSION_DENIED"
            a.access_grant(grantee="acl-peer", resource=resource, mode="read")
            assert read(key=key, owner="acl-owner")["value"] in ("north", "secret")
            assert (
                error_code(write, key=key, value="south", owner="acl-owner") == "PERMISSION_DENIED"
            )
            assert a.access_revoke(grantee="acl-peer", resource=resource) == {"revoked": 1}
            assert error_code(read, key=key, owner="acl-owner") == "PERMISSION_DENIED"
            denials += 3
        assert a.storage_get(key="plan")["value"] == "north"  # the denied write changed nothing
        assert a.mem_get(key="note")["value"] == "secret"

        seen_by_b = b.audit_query(event="deny", limit=1000)["events"]
        seen_by_a = a.audit_query(event="deny", agent="acl-peer", limit=1000)["events"]
        assert seen_by_a == seen_by_b and len(seen_by_b) == denials
        assert all(ev["agent"] == "acl-peer" and ev["target"] == "acl-owner" for ev in seen_by_b)
        assert sorted(ev["resource"] for ev in seen_by_b) == ["memory"] * 3 + ["storage"] * 3
        kinds = {ev["event"] for ev in a.audit_query(agent="acl-peer", limit=1000)["events"]}
        assert kinds == {"grant", "revoke", "deny"}
        # an uninvolved agent sees none of it
        with kernel.client("acl-bystander") as c:
            assert c.audit_query(agent="acl-peer", limit=1000)["events"] == []

    token = (kernel.state_dir / "operator.token").read_text().strip()
    with Client(kernel.address, token=token) as op:
        seen_by_op = op.audit_query(event="deny", agent="acl-peer", limit=1000)["events"]
    assert seen_by_op == seen_by_b


# ---- tools ----------------------------------------------------------------------------------


def test_a_sleeping_tool_times_out_while_the_kernel_serves_others(kernel):
    with kernel.client("tool-sleeper") as slow, kernel.client("tool-busy") as busy:
        t0 = time.monotonic()
        pending = slow.submit("tool.call", name="sleep", args={"seconds": 30})
        for i in range(5):
            assert busy.proc_ping(payload=i)["payload"] == i
            assert (
                busy.tool_call(name="calculator", args={"expression": f"{i}*7"})["result"] == i * 7
            )
        others_done_s = time.monotonic() - t0
        # the sleeper's reply cannot exist before its 2 s timeout: the others came first
        assert others_done_s < 2.0, others_done_s
        with pytest.raises(KernelError) as e:
            pending.result(20)
        sleeper_done_s = time.monotonic() - t0
    assert e.value.code == "TIMEOUT" and "2 s" in e.value.message
    assert 2.0 <= sleeper_done_s < 10, sleeper_done_s  # timed out, not left to sleep 30 s


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_a_crashing_tool_is_a_tool_error_and_the_pool_recovers(kernel, mode):
    with kernel.client(f"tool-crash-{mode}") as c:
        with pytest.raises(KernelError) as e:
            c.tool_call(name="crash", args={"mode": mode})
        assert e.value.code == "TOOL_ERROR"
        for _ in range(3):  # both runners: the replaced one and the other
            assert c.tool_call(name="calculator", args={"expression": "2*(3+4)"}) == {"result": 14}


def test_tool_call_through_the_cli_and_bad_arguments(kernel):
    code, out = call_cli(
        kernel.address,
        "tool.call",
        {"name": "calculator", "args": {"expression": "2**10"}},
        agent="tool-cli",
    )
    assert (code, out) == (0, {"ok": True, "result": {"result": 1024}})
    cases = [
        ({"expression": 5}, "'expression'"),
        ({}, "'expression'"),
        ({"expression": "1", "zz": 1}, "'zz'"),
    ]
    for args, field in cases:
        code, out = call_cli(
            kernel.address, "tool.call", {"name": "calculator", "args": args}, agent="tool-cli"
        )
        assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT", out
        assert field in out["error"]["message"], out
    code, out = call_cli(kernel.address, "tool.call", {"name": "no-such-tool"}, agent="tool-cli")
    assert code == 1 and out["error"]["code"] == "NOT_FOUND"
