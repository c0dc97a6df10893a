"""The kernel as a real process with real agent processes: registration, ps, call, exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from agents.sdk import Client, KernelError
from tests.kernelproc import ROOT, KernelProc, is_alive, run_cli, wait_for


def spawn_agent(kernel, kind: str, index: int, *params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kernel", "agent", "run", kind, "--index", str(index), "--address", kernel.address]
    for p in params:
        cmd += ["--param", p]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ps(kernel, all_: bool = False) -> dict[str, dict]:
    with kernel.client() as c:
        return {a["name"]: a for a in c.proc_ps(all=all_)["agents"]}


def test_agents_register_with_their_own_pids_and_exit_cleanly(kernel):
    procs = [spawn_agent(kernel, "idle", i, "seconds=30") for i in range(3)]
    try:
        rows = wait_for(lambda: (r := ps(kernel)) and all(f"idle-{i}" in r for i in range(3)) and r, what="3 agents in ps")
        assert sorted(rows[f"idle-{i}"]["pid"] for i in range(3)) == sorted(p.pid for p in procs)
        assert all(rows[f"idle-{i}"]["state"] == "running" for i in range(3))
        out = run_cli("ps", "--address", kernel.address)
        assert out.returncode == 0 and all(str(p.pid) in out.stdout for p in procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    # the kernel notices dead agents by their pid and retires them
    rows = wait_for(lambda: (r := ps(kernel, True)) and all(r[f"idle-{i}"]["state"] == "killed" for i in range(3)) and r,
                    what="killed agents reaped")
    assert all(f"idle-{i}" not in ps(kernel) for i in range(3))


def test_hello_agents_run_to_completion(kernel):
    procs = [spawn_agent(kernel, "hello", 10 + i, "llm=true", "tokens=4") for i in range(3)]
    codes = [p.wait(60) for p in procs]
    assert codes == [0, 0, 0], [p.stderr.read().decode()[-500:] for p in procs]
    rows = ps(kernel, True)
    for i in range(3):
        row = rows[f"hello-{10 + i}"]
        assert row["state"] == "exited" and row["exit_code"] == 0 and row["num_syscalls"] >= 4


def test_call_cli_makes_any_syscall(kernel):
    out = run_cli("call", "--address", kernel.address, "proc.ping", '{"payload": [1, "x"]}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"]["payload"] == [1, "x"]
    reg = json.loads(run_cli("call", "--address", kernel.address, "proc.register", '{"name": "cli-tok"}').stdout)
    token = reg["result"]["token"]
    put = run_cli("call", "--address", kernel.address, "--token", token, "mem.put", '{"key": "k", "value": 42}')
    assert put.returncode == 0, put.stdout
    got = run_cli("call", "--address", kernel.address, "--token", token, "mem.get", '{"key": "k"}')
    assert json.loads(got.stdout)["result"]["value"] == 42
    bad = run_cli("call", "--address", kernel.address, "--token", token, "mem.get", '{"key": 5}')
    assert bad.returncode == 1 and json.loads(bad.stdout)["error"]["code"] == "INVALID_ARGUMENT"
    gen = run_cli("call", "--address", kernel.address, "--agent", "cli-gen", "llm.generate",
                  '{"prompt": "hi", "max_new_tokens": 3}')
    assert gen.returncode == 0 and len(json.loads(gen.stdout)["result"]["token_ids"]) == 3
    with Client(kernel.address, token=token) as c:
        c.proc_exit()


def test_wrong_token_is_rejected_and_audited(kernel):
    with Client(kernel.address, token="not-a-token") as c:
        with pytest.raises(KernelError) as e:
            c.mem_get(key="x")
        assert e.value.code == "UNAUTHENTICATED"
    with Client(kernel.address) as anonymous:
        with pytest.raises(KernelError) as e:
            anonymous.mem_list()
        assert e.value.code == "UNAUTHENTICATED"
    # an agent sees only events naming it; the operator (token in the state dir) sees all
    with kernel.client("auditor") as c:
        assert not any(ev["event"] == "bad_token" for ev in c.audit_query()["events"])
    token = (kernel.state_dir / "operator.token").read_text().strip()
    assert oct((kernel.state_dir / "operator.token").stat().st_mode & 0o777) == "0o600"
    with Client(kernel.address, token=token) as op:
        details = [ev.get("detail") or "" for ev in op.audit_query(event="bad_token")["events"]]
    assert any("mem.get: token wrong" in d for d in details)
    assert any("mem.list: token absent" in d for d in details)


def test_duplicate_live_name_is_refused(kernel):
    with kernel.client("dup") as c:
        with pytest.raises(KernelError) as e:
            Client(kernel.address, name="dup")
        assert e.value.code == "ALREADY_EXISTS"
        assert c.proc_ping()["pong"] is True


def test_kernel_keeps_serving_while_a_long_request_runs(kernel):
    with kernel.client("slow") as slow, kernel.client("fast") as fast:
        pending = slow.submit("llm.generate", prompt="a long one", max_new_tokens=400)
        for _ in range(20):
            assert fast.proc_ping()["pong"] is True
        pings_done = time.monotonic()  # CLOCK_MONOTONIC: the kernel's timing uses the same clock
        result = pending.result(120)
    assert len(result["token_ids"]) == 400
    assert pings_done < result["timing"]["finish"], "pings must not wait for the long request"


def test_killed_agent_has_its_requests_cancelled(kernel):
    code = ("import os, sys, time; from agents.sdk import Client; "
            f"c = Client({kernel.address!r}, name='victim'); "
            "[c.submit('llm.generate', prompt='x', max_new_tokens=2000, request_id=f'r{i}') for i in range(3)]; "
            "print('ok', flush=True); time.sleep(60)")
    victim = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE)
    assert victim.stdout.readline().strip() == b"ok"
    wait_for(lambda: ps(kernel).get("victim", {}).get("num_active_requests") == 3, what="victim's requests active")
    victim.kill()
    victim.wait()
    wait_for(lambda: ps(kernel, True)["victim"]["state"] == "killed", what="victim reaped")

    def victim_rows() -> list[dict]:
        with kernel.client() as c:
            return c.sched_stats(agent="victim")["requests"]

    # a request in the middle of a slice is "cancelling" until that slice returns
    assert all(r["state"] in ("cancelled", "cancelling") for r in victim_rows())
    rows = wait_for(lambda: (rows := victim_rows()) and all(r["state"] == "cancelled" for r in rows) and rows,
                    what="all cancelled")
    assert sorted(r["rid"] for r in rows) == ["victim/r0", "victim/r1", "victim/r2"]


def test_sigint_shuts_down_cleanly_without_workers(tmp_path):
    k = KernelProc(tmp_path / "k", workers=0)
    k.wait_ready(30)
    with k.client("a") as c:
        with pytest.raises(KernelError) as e:
            c.llm_generate(prompt="x")
        assert e.value.code == "UNAVAILABLE"
    k.children = []
    k.kernel.client.close()  # stopped by SIGINT, not by stop(), which would close its query client
    k.proc.send_signal(signal.SIGINT)
    assert k.proc.wait(20) == 0
    assert not k.leftovers()
    assert not is_alive(k.pid)
    assert (k.state_dir / "kernel.log").exists()


def test_second_kernel_on_same_state_dir_is_refused(kernel):
    out = run_cli("kernel", "--state-dir", str(kernel.state_dir), "--workers", "0", timeout_s=20)
    assert out.returncode != 0 and "already runs" in out.stderr
    assert os.path.exists(kernel.state_dir / "kernel.sock")


def test_streaming_chunks_add_up_to_the_reply(kernel):
    chunks: list[dict] = []
    with kernel.client("streamer") as c:
        reply = c.llm_generate(prompt="stream me", max_new_tokens=9, stream=True, _on_stream=chunks.append)
    assert len(chunks) >= 2, "quantum 2 slices: several chunks"
    assert [t for ch in chunks for t in ch["token_ids"]] == reply["token_ids"]
    assert all(ch["request_id"] == reply["request_id"] for ch in chunks)


def test_attach_fetches_a_reply_again_and_streams_only_what_was_not_received(kernel):
    """llm.attach by request id: to a request in flight (its reply moves to the new call) and to
    one that finished (its reply is kept for the grace period); stream messages resume after the
    `received` tokens; an unknown id is NOT_FOUND."""
    with kernel.client("attacher") as c:
        first = c.submit("llm.generate", prompt="attach to me", max_new_tokens=40, stream=True, request_id="r")
        chunks: list[dict] = []
        again = c.submit("llm.attach", chunks.append, request_id="r", received=3)
        reply = again.result(60)
        assert [t for ch in chunks for t in ch["token_ids"]] == reply["token_ids"][3:]
        assert reply["request_id"] == "attacher/r" and len(reply["token_ids"]) == 40
        assert c.pump(200) == 0 and not first.is_done, "the first call's reply moved to the attach"
        late: list[dict] = []
        assert c.llm_attach(request_id="attacher/r", received=35, _on_stream=late.append) == reply
        assert [t for ch in late for t in ch["token_ids"]] == reply["token_ids"][35:]
        with pytest.raises(KernelError) as e:
            c.llm_attach(request_id="never")
        assert e.value.code == "NOT_FOUND"


def test_model_path_loads_a_local_hugging_face_dir(kernel, tmp_path):
    """--model PATH: the tiny model's own directory, loaded as any HF dir, gives the same tokens."""
    with kernel.client() as c:
        worker = c.sched_stats()["workers"][0]
    with kernel.client("by-name") as c:
        expected = c.llm_generate(prompt="same weights", max_new_tokens=6)["token_ids"]
    k = KernelProc(tmp_path / "bypath", "--model", worker["model_dir"]).wait_ready()
    try:
        with k.client("by-path") as c:
            assert c.llm_generate(prompt="same weights", max_new_tokens=6)["token_ids"] == expected
            assert c.sched_stats()["workers"][0]["fingerprint"]["weights_sha256"] == worker["fingerprint"]["weights_sha256"]
    finally:
        assert k.stop() == 0
    out = run_cli("kernel", "--state-dir", str(tmp_path / "nomodel"), "--model", str(tmp_path / "missing"), timeout_s=30)
    assert out.returncode != 0 and "no such directory" in out.stderr


def test_workers_that_cannot_start_make_llm_unavailable_with_a_pointer_to_the_log(tmp_path):
    k = KernelProc(tmp_path / "badmodel", "--model", "no-such-model-name")
    try:
        with Client(k.address, name="asker", timeout_s=120) as c:
            with pytest.raises(KernelError) as e:
                c.llm_generate(prompt="x", max_new_tokens=2)
            assert e.value.code == "UNAVAILABLE" and "worker-0.log" in e.value.message
            with pytest.raises(KernelError) as e:
                c.llm_generate(prompt="y", max_new_tokens=2)
            assert e.value.code == "UNAVAILABLE"
            assert c.mem_put(key="k", value=1)["bytes"] > 0  # everything else still serves
    finally:
        assert k.stop() == 0
    assert not k.leftovers()


def test_worker_log_has_no_deprecation_after_generate(kernel):
    with kernel.client("deprecation-check") as c:
        reply = c.llm_generate(prompt="no deprecated calls", max_new_tokens=6, num_beams=2)
    assert len(reply["token_ids"]) >= 1
    logs = sorted(kernel.state_dir.glob("worker-*.log"))
    assert logs, "the kernel writes one log per worker"
    for log in logs:
        text = log.read_text().lower()
        assert "deprecat" not in text and "futurewarning" not in text, f"{log.name}: {text[-800:]}"


def test_logprobs_come_with_the_tokens(kernel):
    with kernel.client("logprobs") as c:
        reply = c.llm_generate(prompt="log probabilities", max_new_tokens=7, logprobs=True)
        plain = c.llm_generate(prompt="log probabilities", max_new_tokens=7)
        with pytest.raises(KernelError, match="INVALID_ARGUMENT.*logprobs"):
            c.llm_generate(prompt="beams", max_new_tokens=3, num_beams=2, logprobs=True)
    assert len(reply["logprobs"]) == len(reply["token_ids"]) == 7 and "logprobs" not in plain
    assert reply["token_ids"] == plain["token_ids"]
    assert all(lp <= 0.0 for lp in reply["logprobs"])
    assert all(float(np.float32(lp)) == lp for lp in reply["logprobs"])  # float32 values
