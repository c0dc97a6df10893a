"""docs/protocol.md sections 1-6 against a live kernel, through raw ZeroMQ + MessagePack (no
SDK): each test checks one documented behaviour, so the doc and the kernel cannot drift apart."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import zmq

from tests.conformance.conftest import MAX_MESSAGE_BYTES
from tests.conformance.rawclient import DOC, VERSION, Raw, pack

NO_TOKEN = ("proc.register", "proc.ping", "proc.ps", "sched.stats", "llm.info")


# ---- 1. transport -------------------------------------------------------------------------
def test_req_framing_is_answered_in_kind_and_refuses_streaming(kernel):
    req = Raw(kernel.address, zmq.REQ)
    try:
        req.register("conf-req")
        err = req.error("llm.generate", {"prompt": "hi", "max_new_tokens": 2, "stream": True})
        assert err["code"] == "INVALID_ARGUMENT" and "'stream'" in err["message"] and "DEALER" in err["message"]
        assert req.ok("llm.generate", {"prompt": "hi", "max_new_tokens": 2})["finish_reason"] == "length"
    finally:
        req.close()


def test_bad_framing_and_junk_get_an_error_with_nil_id(agent):
    agent.sock.send_multipart([b"a", b"b", b"c"])
    reply = agent.recv()
    assert reply["id"] is None and reply["error"]["code"] == "BAD_FRAME"
    agent.sock.send(b"\xc1")
    assert agent.recv()["error"]["code"] == "BAD_FRAME"


@pytest.mark.parametrize("req_id", [41, "big-one"])
def test_too_large_carries_the_request_id(agent, req_id):
    agent.send("proc.ping", {"payload": "x" * (MAX_MESSAGE_BYTES + 10)}, req_id=req_id)
    reply = agent.recv()
    assert reply == {"v": VERSION, "id": req_id, "ok": False, "error": reply["error"]}
    assert reply["error"]["code"] == "TOO_LARGE"
    agent.sock.send(pack(["x" * (MAX_MESSAGE_BYTES + 10)]))  # no map, no id to read
    reply = agent.recv()
    assert reply["id"] is None and reply["error"]["code"] == "TOO_LARGE"


# ---- 2. envelope --------------------------------------------------------------------------
def test_reply_shape_and_version_match_the_doc(agent):
    reply, _ = agent.call("proc.ping", {"payload": [1, "x"]}, req_id="s-1")
    assert set(reply) == {"v", "id", "ok", "result"} and reply["v"] == VERSION and reply["id"] == "s-1"
    assert f'"v": {VERSION}' in DOC
    err = agent.error("proc.ping", req_id=7, v=VERSION + 1)
    assert err["code"] == "UNSUPPORTED_VERSION"


@pytest.mark.parametrize("env, code, needle", [
    ({"extra": 1}, "BAD_ENVELOPE", "'extra'"),
    ({"args": []}, "BAD_ENVELOPE", "'args'"),
])
def test_envelope_errors_name_the_field(agent, env, code, needle):
    msg = {"v": VERSION, "id": 5, "call": "proc.ping", "args": {}, **env}
    agent.sock.send(pack(msg))
    reply = agent.recv()
    assert reply["id"] == 5 and reply["error"]["code"] == code and needle in reply["error"]["message"]


def test_bad_id_gets_nil_id(agent):
    agent.sock.send(pack({"v": VERSION, "id": "x" * 129, "call": "proc.ping", "args": {}}))
    reply = agent.recv()
    assert reply["id"] is None and reply["error"]["code"] == "BAD_ENVELOPE"


@pytest.mark.parametrize("args, field", [
    ({"top_p": 0.0}, "top_p"), ({"stop": [""]}, "stop[0]"), ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"temperature": -1.0}, "temperature"), ({"bogus": 1}, "bogus"), ({"request_id": "a#b"}, "request_id"),
])
def test_out_of_bound_arguments_name_the_field(agent, args, field):
    err = agent.error("llm.generate", {"prompt": "hi", **args})
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith(f"field '{field}': ")


def test_in_bound_edge_values_are_served(agent):
    result = agent.ok("llm.generate", {"prompt": "hi", "max_new_tokens": 3, "temperature": 1.0, "top_p": 1e-9,
                                       "stop": ["\x00\x01"], "seed": 3})
    assert len(result["token_ids"]) == 3


def test_stream_chunks_concatenate_to_the_reply(agent):
    reply, chunks = agent.call("llm.generate", {"prompt": "stream me", "max_new_tokens": 9, "stream": True})
    assert chunks and all(c["v"] == VERSION and set(c["stream"]) >= {"request_id", "token_ids", "text"} for c in chunks)
    assert [t for c in chunks for t in c["stream"]["token_ids"]] == reply["result"]["token_ids"]


def test_beam_search_streams_nothing(agent):
    reply, chunks = agent.call("llm.generate", {"prompt": "beams", "max_new_tokens": 6, "num_beams": 3, "stream": True})
    assert reply["ok"] and chunks == [] and len(reply["result"]["token_ids"]) >= 1


# ---- 3. handshake, names, request ids -----------------------------------------------------
def test_register_result_and_tokens(kernel):
    raw = Raw(kernel.address)
    try:
        result = raw.register("conf-reg")
        assert set(result) >= {"agent_id", "token", "secret", "protocol_version", "kernel_pid", "max_message_bytes"}
        assert result["protocol_version"] == VERSION and result["max_message_bytes"] == MAX_MESSAGE_BYTES
        assert raw.error("mem.list", token="wrong")["code"] == "UNAUTHENTICATED"
        for call in NO_TOKEN[1:]:
            raw.token = None
            assert raw.call(call)[0]["ok"], call
    finally:
        raw.close()


def test_a_name_needs_its_identity_secret_after_the_first_registration(kernel):
    first, other = Raw(kernel.address), Raw(kernel.address)
    try:
        secret = first.register("conf-ident")["secret"]
        assert len(secret) == 64 and first.ok("proc.exit") == {"cancelled_requests": 0}
        for wrong in (None, "0" * 64):
            err = other.error("proc.register", {"name": "conf-ident", "secret": wrong})
            assert err["code"] == "UNAUTHENTICATED" and secret not in err["message"]
        again = other.register("conf-ident", secret=secret)
        assert again["secret"] is None  # returned once, on creation
        events = other.ok("audit.query", {"event": "bad_secret"})["events"]  # the name's owner sees the attempts
        assert [e["agent"] for e in events] == ["conf-ident", "conf-ident"]
    finally:
        first.close()
        other.close()


@pytest.mark.parametrize("name", ["a/b", "", "-x", "x y", "é", "n" * 65, "pq/r"])
def test_bad_names_are_refused(kernel, name):
    raw = Raw(kernel.address)
    try:
        err = raw.error("proc.register", {"name": name})
        assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith("field 'name': ")
    finally:
        raw.close()


@pytest.mark.parametrize("call, args, field", [("storage.get", {"key": "k", "owner": "x/y"}, "owner"),
                                                ("access.grant", {"grantee": "a b", "resource": "storage"}, "grantee")])
def test_names_in_owner_and_grantee_are_checked(agent, call, args, field):
    err = agent.error(call, args)
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith(f"field '{field}': ")


def test_request_ids_cannot_collide_and_fit_the_limit(kernel):
    pq, other = Raw(kernel.address), Raw(kernel.address)
    try:
        pq.register("pq")
        other.register("pq.r")
        assert pq.ok("llm.generate", {"prompt": "x", "max_new_tokens": 1, "request_id": "r/1"})["request_id"] == "pq/r/1"
        assert other.ok("llm.generate", {"prompt": "x", "max_new_tokens": 1})["request_id"] == "pq.r/0"
        label = "L" * 128
        rid = pq.ok("llm.generate", {"prompt": "x", "max_new_tokens": 1, "request_id": label})["request_id"]
        assert rid == f"pq/{label}" and len(rid) <= 193 and "request id `<agent>/<label>` | 193 chars" in DOC
        assert pq.ok("llm.generate", {"prompt": "x", "max_new_tokens": 1, "request_id": "pq/own"})["request_id"] == "pq/own"
    finally:
        pq.close()
        other.close()


def test_duplicate_label_in_flight_and_cancel(agent):
    first = agent.send("llm.generate", {"prompt": "long", "max_new_tokens": 300, "request_id": "dup"})
    assert agent.error("llm.generate", {"prompt": "x", "request_id": "dup"})["code"] == "ALREADY_EXISTS"
    cancel = agent.send("llm.cancel", {"request_id": "dup"})
    replies = {r["id"]: r for r in (agent.recv(), agent.recv())}  # in any order: matched by id
    assert replies[cancel]["result"] == {"cancelled": True}
    assert replies[first]["error"]["code"] == "CANCELLED"
    assert agent.error("llm.cancel", {"request_id": "dup"})["code"] == "NOT_FOUND"


def test_ps_states_running_exited_killed(kernel):
    code = ("import os, sys, time, msgpack, zmq; s = zmq.Context().socket(zmq.DEALER); s.connect(sys.argv[1]); "
            f"s.send(msgpack.packb({{'v': {VERSION}, 'id': 1, 'call': 'proc.register', "
            "'args': {'name': 'conf-doomed', 'pid': os.getpid()}})); s.recv(); print('up', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, kernel.address], stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"up\n"
    raw = Raw(kernel.address)
    try:
        raw.register("conf-exits")
        rows = {a["name"]: a for a in raw.ok("proc.ps")["agents"]}
        assert rows["conf-doomed"]["state"] == rows["conf-exits"]["state"] == "running"
        raw.ok("proc.exit", {"code": 3})
        child.kill()
        child.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            raw.token = None
            rows = {a["name"]: a for a in raw.ok("proc.ps", {"all": True})["agents"]}
            if rows["conf-doomed"]["state"] == "killed":
                break
            time.sleep(0.1)
        assert (rows["conf-exits"]["state"], rows["conf-exits"]["exit_code"]) == ("exited", 3)
        assert (rows["conf-doomed"]["state"], rows["conf-doomed"]["exit_code"]) == ("killed", None)
        assert "conf-exits" not in {a["name"] for a in raw.ok("proc.ps")["agents"]}
    finally:
        raw.close()
