"""Persistent identities through a live kernel, `aiosim call` and `aiosim agent add|list|rm`: a
name's data is reachable only with its secret, across processes and kernel restarts; grants
persist; deleting an identity deletes what it owned; secrets never reach the logs."""

from __future__ import annotations

import json

import pytest

from agents.sdk import Client, KernelError
from tests.kernelproc import KernelProc, run_cli


def cli_call(k: KernelProc, agent: str, syscall: str, args: dict, *flags: str) -> tuple[int, dict]:
    out = run_cli("call", "--address", k.address, "--agent", agent, *flags, syscall, json.dumps(args))
    return out.returncode, json.loads(out.stdout)


def operator(k: KernelProc) -> Client:
    return Client(k.address, token=(k.state_dir / "operator.token").read_text().strip())


def test_a_name_is_claimed_by_its_first_registration_across_processes_and_restarts(tmp_path):
    state = tmp_path / "s"
    k = KernelProc(state, workers=0).wait_ready(30)
    try:
        assert cli_call(k, "alice", "storage.put", {"key": "diary", "value": "alice secret"})[0] == 0
        secret_file = state / "secrets" / "alice.secret"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        code, out = cli_call(k, "alice", "storage.get", {"key": "diary"}, "--secret-file", str(tmp_path / "none"))
        assert code == 1 and out["error"]["code"] == "UNAUTHENTICATED"
        code, out = cli_call(k, "alice", "storage.get", {"key": "diary"})  # the keeper of the secret
        assert (code, out["result"]["value"]) == (0, "alice secret")
        assert cli_call(k, "alice", "access.grant", {"grantee": "bob", "resource": "storage"})[1]["error"]["code"] \
            == "NOT_FOUND"  # bob has no identity yet: whoever claimed the name first would get the grant
        assert cli_call(k, "bob", "storage.list", {})[0] == 0  # bob registers once
        assert cli_call(k, "alice", "access.grant", {"grantee": "bob", "resource": "storage"})[0] == 0
        with operator(k) as op:
            events = op.audit_query(event="bad_secret")["events"]
        assert [e["agent"] for e in events] == ["alice"]
    finally:
        assert k.stop() == 0
    k = KernelProc(state, workers=0).wait_ready(30)
    try:
        with pytest.raises(KernelError) as e:
            Client(k.address, name="alice", secret_file=False)
        assert e.value.code == "UNAUTHENTICATED"
        code, out = cli_call(k, "bob", "storage.get", {"key": "diary", "owner": "alice"})  # the grant survived
        assert (code, out["result"]["value"]) == (0, "alice secret")
    finally:
        assert k.stop() == 0
    log = (state / "kernel.log").read_text()
    assert secret_file.read_text().strip() not in log and "Traceback" not in log


def test_operator_adds_lists_and_removes_identities(tmp_path):
    state = tmp_path / "s"
    k = KernelProc(state, workers=0).wait_ready(30)
    try:
        out = run_cli("agent", "add", "carol", "--state-dir", str(state))
        assert out.returncode == 0, out.stderr
        secret = out.stdout.strip().splitlines()[-1].split()[-1]
        assert (state / "secrets" / "carol.secret").read_text().strip() == secret
        with Client(k.address, name="carol", secret=secret, secret_file=False) as carol:
            carol.storage_put(key="k", value=1)
            assert run_cli("agent", "add", "dave", "--state-dir", str(state)).returncode == 0
            carol.access_grant(grantee="dave", resource="storage")
            listing = run_cli("agent", "list", "--state-dir", str(state)).stdout
            assert "carol" in listing and "yes" in listing.splitlines()[1]
            with pytest.raises(KernelError) as e:
                carol.identity_list()
            assert e.value.code == "PERMISSION_DENIED"
        assert run_cli("agent", "add", "carol", "--state-dir", str(state)).returncode == 1  # ALREADY_EXISTS
        assert run_cli("agent", "rm", "carol", "--state-dir", str(state)).returncode == 0
        assert not (state / "secrets" / "carol.secret").exists()
        with Client(k.address, name="carol", secret=secret, secret_file=False) as reborn:  # a new identity
            assert reborn.storage_list()["keys"] == [] and reborn.access_list()["given"] == []
        assert run_cli("agent", "rm", "nobody", "--state-dir", str(state)).returncode == 1
        assert run_cli("agent", "list", "--state-dir", str(tmp_path / "nokernel")).returncode == 2
    finally:
        assert k.stop() == 0
    assert secret not in (state / "kernel.log").read_text()
