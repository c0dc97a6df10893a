"""A hypothesis state machine: several agents doing random memory, storage, snapshot-cancel and
grant/revoke operations through the real handlers and managers (real LMDB in a temp dir), across
kernel restarts (services reopened on the same state dir), registrations with right, missing and
wrong secrets, and identity deletion followed by reuse of the name by a new identity.

Model: the identities' secrets, the live grants, each agent's memory and each key's version
history. Invariants: a call succeeds exactly when the model allows it (no read, change, cancel
or listing of another agent's things without a live grant; a deleted identity's data and grants
are gone for the name's next owner), the data matches the model, every denial and every bad
secret is audited, audit.query shows an agent only events naming it, quotas hold and every
manager's check_integrity() passes."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from syscalls.codec import unpack
from syscalls.errors import ErrorCode, SyscallError
from tests.services.helpers import open_harness, remove_state

AGENTS = ("a", "b", "c")
QUOTA = 60
agents = st.sampled_from(AGENTS)
owners = st.one_of(st.none(), agents)
keys = st.sampled_from(("k0", "k1", "k2", "k3"))
values = st.one_of(
    st.integers(-1000, 1000), st.text(max_size=16), st.lists(st.integers(0, 9), max_size=4)
)
resources = st.sampled_from(("memory", "storage", "snapshots"))
modes = st.sampled_from(("read", "write", "readwrite"))
DENIED = object()
TOMBSTONE = object()


class ServicesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = open_harness(tool_workers=0, mem_quota_bytes=QUOTA)
        self.grants: set[tuple[str, str, str, str]] = set()
        self.memory: dict[str, dict[str, Any]] = {a: {} for a in AGENTS}
        self.versions: dict[tuple[str, str], list[Any]] = {}
        self.num_denials = 0
        self.secrets: dict[str, str] = {}
        self.num_bad_secrets = 0
        for agent in AGENTS:  # every name that acts has an identity, as in the kernel
            self.register(agent, "none")

    def teardown(self) -> None:
        self.h.close()
        remove_state(self.h)

    # ---- model helpers -------------------------------------------------------------------
    def allowed(self, caller: str, owner: str | None, resource: str, mode: str) -> bool:
        if owner is None or owner == caller:
            return True
        return any((owner, caller, resource, m) in self.grants for m in (mode, "readwrite"))

    def run(self, caller: str, owner: str | None, resource: str, mode: str, call: str, **args):
        """Make the call; if the model denies it, assert PERMISSION_DENIED and return DENIED."""
        if owner is not None:
            args["owner"] = owner
        if self.allowed(caller, owner, resource, mode):
            return self.h.call(caller, call, **args)
        try:
            self.h.call(caller, call, **args)
        except SyscallError as err:
            assert err.code == ErrorCode.PERMISSION_DENIED, err
            self.num_denials += 1
            return DENIED
        raise AssertionError(f"{caller} did {call} on {owner}'s {resource} without a grant")

    def expect_error(self, code: ErrorCode, *run_args, **kwargs):
        try:
            result = self.run(*run_args, **kwargs)
        except SyscallError as err:
            assert err.code == code, err
            return
        assert result is DENIED, f"expected {code}, got {result}"

    def live(self, owner: str, key: str) -> Any:
        history = self.versions.get((owner, key), [])
        return history[-1] if history else TOMBSTONE

    # ---- memory --------------------------------------------------------------------------
    @rule(caller=agents, owner=owners, key=keys, value=values)
    def mem_put(self, caller, owner, key, value):
        if (
            self.run(caller, owner, "memory", "write", "mem.put", key=key, value=value)
            is not DENIED
        ):
            self.memory[owner or caller][key] = value

    @rule(caller=agents, owner=owners, key=keys)
    def mem_put_too_big(self, caller, owner, key):
        self.expect_error(
            ErrorCode.QUOTA_EXCEEDED,
            caller,
            owner,
            "memory",
            "write",
            "mem.put",
            key=key,
            value="z" * QUOTA,
        )

    @rule(caller=agents, owner=owners, key=keys)
    def mem_get(self, caller, owner, key):
        expected = self.memory[owner or caller].get(key, TOMBSTONE)
        if expected is TOMBSTONE:
            return self.expect_error(
                ErrorCode.NOT_FOUND, caller, owner, "memory", "read", "mem.get", key=key
            )
        result = self.run(caller, owner, "memory", "read", "mem.get", key=key)
        assert result is DENIED or result["value"] == expected

    @rule(caller=agents, owner=owners)
    def mem_list(self, caller, owner):
        result = self.run(caller, owner, "memory", "read", "mem.list")
        if result is not DENIED:
            assert {e["key"] for e in result["entries"]} == set(self.memory[owner or caller])
            assert result["used_bytes"] <= QUOTA

    @rule(caller=agents, owner=owners, key=keys)
    def mem_delete(self, caller, owner, key):
        result = self.run(caller, owner, "memory", "write", "mem.delete", key=key)
        if result is not DENIED:
            assert result["deleted"] == (key in self.memory[owner or caller])
            self.memory[owner or caller].pop(key, None)

    # ---- storage -------------------------------------------------------------------------
    @rule(caller=agents, owner=owners, key=keys, value=values)
    def storage_put(self, caller, owner, key, value):
        result = self.run(caller, owner, "storage", "write", "storage.put", key=key, value=value)
        if result is not DENIED:
            history = self.versions.setdefault((owner or caller, key), [])
            history.append(value)
            assert result["version"] == len(history)

    @rule(caller=agents, owner=owners, key=keys)
    def storage_get(self, caller, owner, key):
        expected = self.live(owner or caller, key)
        if expected is TOMBSTONE:
            return self.expect_error(
                ErrorCode.NOT_FOUND, caller, owner, "storage", "read", "storage.get", key=key
            )
        result = self.run(caller, owner, "storage", "read", "storage.get", key=key)
        assert result is DENIED or result["value"] == expected

    @rule(caller=agents, owner=owners, key=keys)
    def storage_delete(self, caller, owner, key):
        was_live = self.live(owner or caller, key) is not TOMBSTONE
        result = self.run(caller, owner, "storage", "write", "storage.delete", key=key)
        if result is not DENIED:
            assert result["deleted"] == was_live
            if was_live:
                self.versions[(owner or caller, key)].append(TOMBSTONE)

    @rule(caller=agents, owner=owners, key=keys, version=st.integers(1, 4))
    def storage_rollback(self, caller, owner, key, version):
        history = self.versions.get((owner or caller, key), [])
        if version > len(history):
            return self.expect_error(
                ErrorCode.NOT_FOUND,
                caller,
                owner,
                "storage",
                "write",
                "storage.rollback",
                key=key,
                version=version,
            )
        result = self.run(
            caller, owner, "storage", "write", "storage.rollback", key=key, version=version
        )
        if result is not DENIED:
            history.append(history[version - 1])
            assert result["version"] == len(history)

    @rule(caller=agents, owner=owners)
    def storage_list(self, caller, owner):
        result = self.run(caller, owner, "storage", "read", "storage.list")
        if result is not DENIED:
            live = {
                k
                for (o, k), h in self.versions.items()
                if o == (owner or caller) and h[-1] is not TOMBSTONE
            }
            assert {k["key"] for k in result["keys"]} == live

    # ---- grants and exits ----------------------------------------------------------------
    @rule(owner=agents, grantee=agents, resource=resources, mode=modes)
    def grant(self, owner, grantee, resource, mode):
        if owner == grantee:
            try:
                self.h.call(owner, "access.grant", grantee=grantee, resource=resource, mode=mode)
            except SyscallError as err:
                assert err.code == ErrorCode.INVALID_ARGUMENT
                return
            raise AssertionError("granted to self")
        self.h.call(owner, "access.grant", grantee=grantee, resource=resource, mode=mode)
        self.grants.add((owner, grantee, resource, mode))

    @rule(owner=agents, grantee=agents, resource=resources)
    def revoke(self, owner, grantee, resource):
        gone = {g for g in self.grants if g[:3] == (owner, grantee, resource)}
        assert self.h.call(owner, "access.revoke", grantee=grantee, resource=resource)[
            "revoked"
        ] == len(gone)
        self.grants -= gone

    @precondition(lambda self: any(self.memory.values()))
    @rule(agent=agents)
    def agent_exit(self, agent):
        self.h.services.on_agent_exit(agent)
        self.memory[agent] = {}

    # ---- snapshots (the LLM service's owner-scoped calls) -----------------------------------
    @rule(caller=agents, owner=owners)
    def llm_cancel(self, caller, owner):
        before = list(self.h.llm.cancelled)
        result = self.run(caller, owner, "snapshots", "write", "llm.cancel", request_id="r1")
        expected = before if result is DENIED else [*before, (owner or caller, "r1")]
        assert self.h.llm.cancelled == expected

    @rule(caller=agents, owner=owners)
    def llm_snapshots(self, caller, owner):
        before = list(self.h.llm.listed)
        result = self.run(caller, owner, "snapshots", "read", "llm.snapshots")
        assert self.h.llm.listed == (before if result is DENIED else [*before, owner or caller])

    # ---- identities and restarts ---------------------------------------------------------
    @rule(agent=agents, how=st.sampled_from(("kept", "none", "wrong")))
    def register(self, agent, how):
        secret = {"kept": self.secrets.get(agent), "none": None, "wrong": "0" * 64}[how]
        try:
            result = self.h.call(agent, "proc.register", name=agent, secret=secret)
        except SyscallError as err:
            assert err.code == ErrorCode.UNAUTHENTICATED and agent in self.secrets and how != "kept", err
            self.num_bad_secrets += 1
            return
        assert agent not in self.secrets or how == "kept", f"{agent} registered without its secret"
        assert (result["secret"] is None) == (agent in self.secrets)
        self.secrets.setdefault(agent, result["secret"])

    @rule(agent=agents)
    def delete_identity_and_reuse_name(self, agent):
        assert self.h.call("operator", "identity.remove", name=agent) == {"removed": True}
        self.grants = {g for g in self.grants if agent not in g[:2]}
        self.memory[agent] = {}
        self.versions = {k: v for k, v in self.versions.items() if k[0] != agent}
        old = self.secrets.pop(agent)
        self.register(agent, "kept")  # a new owner of the name: a new identity
        assert self.secrets[agent] != old
        try:
            self.h.call(agent, "proc.register", name=agent, secret=old)
        except SyscallError as err:
            assert err.code == ErrorCode.UNAUTHENTICATED, err
            self.num_bad_secrets += 1
            return
        raise AssertionError("the deleted identity's secret still registers")

    @rule(caller=agents, name=agents)
    def only_the_operator_manages_identities(self, caller, name):
        for call, args in (("identity.remove", {"name": name}), ("identity.list", {}), ("identity.add", {"name": "z"})):
            try:
                self.h.call(caller, call, **args)
            except SyscallError as err:
                assert err.code == ErrorCode.PERMISSION_DENIED, err
                self.num_denials += 1
                continue
            raise AssertionError(f"{caller} managed identities")

    @rule()
    def restart(self):
        self.h.reopen()
        self.memory = {a: {} for a in AGENTS}  # memory does not survive; storage, grants, identities do

    @rule(caller=agents)
    def audit_shows_only_own_events(self, caller):
        events = self.h.call(caller, "audit.query", limit=1000)["events"]
        assert all(caller in (e["agent"], e["target"]) for e in events)

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def integrity_holds(self):
        self.h.services.check_integrity()

    @invariant()
    def every_denial_is_audited(self):
        rows = self.h.services.audit.store.scan("events")
        assert sum(1 for _, data in rows if unpack(data)[1] == "deny") == self.num_denials
        assert sum(1 for _, data in rows if unpack(data)[1] == "bad_secret") == self.num_bad_secrets

    @invariant()
    def grants_match_the_model(self):
        for a in AGENTS:
            given = {
                (g["owner"], g["grantee"], g["resource"], g["mode"])
                for g in self.h.call(a, "access.list")["given"]
            }
            assert given == {g for g in self.grants if g[0] == a}


TestServicesMachine = ServicesMachine.TestCase
TestServicesMachine.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
