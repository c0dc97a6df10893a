"""Garbage thrown at a live kernel: every addressable message gets one error reply with a
stable code, and other agents' calls keep succeeding meanwhile."""

from __future__ import annotations

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode
from syscalls.table import PROTOCOL_VERSION, SYSCALLS
from tests.strategies import VALUES, valid_args

CODES = {c.value for c in ErrorCode}
NO_TOKEN_CALLS = {name for name, s in SYSCALLS.items() if not s.needs_token}
MAX_MESSAGE_BYTES = 65536  # the session kernel's --max-message-bytes


@st.composite
def envelopes(draw: st.DrawFn) -> dict:
    call = draw(st.one_of(st.sampled_from(sorted(SYSCALLS)), st.text(max_size=12)))
    args = draw(valid_args(SYSCALLS[call])) if call in SYSCALLS and draw(st.booleans()) else draw(VALUES)
    msg = {"v": draw(st.sampled_from([1, 1, 1, 0, 2, "1", None, 1.0])),
           "id": draw(st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=140), st.none(), st.floats())),
           "call": call, "args": args}
    if draw(st.booleans()):
        msg["token"] = draw(st.one_of(st.text(max_size=40), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=8)))
    for key in draw(st.lists(st.sampled_from(["v", "id", "call", "args"]), max_size=2)):
        msg.pop(key, None)
    if draw(st.integers(0, 4)) == 0:
        msg[draw(st.text(max_size=6))] = draw(VALUES)
    return msg


GARBAGE = st.one_of(
    st.binary(max_size=300).map(lambda b: [b]),
    VALUES.map(lambda v: [pack(v)]),
    envelopes().map(lambda m: [pack(m)]),
    st.lists(st.binary(max_size=30), min_size=2, max_size=5),
    st.integers(MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES * 2).map(lambda n: [pack({"v": PROTOCOL_VERSION, "id": 1, "call": "proc.ping", "args": {"payload": "x" * n}})]),
)


@pytest.fixture(scope="module")
def raw(kernel):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(kernel.address)
    yield sock
    sock.close(linger=0)


@pytest.fixture(scope="module")
def bystander(kernel):
    with kernel.client("bystander") as c:
        yield c


def is_request_valid(frames: list[bytes]) -> bool:
    """Could the kernel legitimately answer ok? Only a well-formed call that needs no token."""
    body = frames[-1] if len(frames) == 1 or (len(frames) == 2 and frames[0] == b"") else None
    if body is None or len(body) > MAX_MESSAGE_BYTES:
        return False
    try:
        msg = unpack(body)
    except Exception:
        return False
    return isinstance(msg, dict) and msg.get("call") in NO_TOKEN_CALLS and "token" not in msg


@settings(max_examples=250)
@given(GARBAGE)
def test_garbage_gets_error_replies_and_others_proceed(raw, bystander, frames):
    before = bystander.submit("proc.ping", payload="before")
    raw.send_multipart(frames)
    assert raw.poll(10_000), f"no reply to {frames!r:.200}"
    reply_frames = raw.recv_multipart()
    reply = unpack(reply_frames[-1])
    assert isinstance(reply, dict) and reply["v"] == PROTOCOL_VERSION
    if reply["ok"]:
        assert is_request_valid(frames), f"garbage accepted: {frames!r:.200}"
    else:
        assert reply["error"]["code"] in CODES and isinstance(reply["error"]["message"], str)
    assert not raw.poll(0), "more than one reply to one message"
    assert before.result(10)["payload"] == "before"
    assert bystander.mem_put(key="alive", value=len(frames))["bytes"] > 0


def test_error_reply_echoes_the_request_id(raw):
    raw.send(pack({"v": PROTOCOL_VERSION, "id": "abc", "call": "no.such", "args": {}}))
    assert raw.poll(5000)
    reply = unpack(raw.recv())
    assert reply["id"] == "abc" and reply["error"]["code"] == "UNKNOWN_CALL"
    raw.send(pack({"v": PROTOCOL_VERSION, "id": 9, "call": "mem.get", "args": {"key": 1}, "token": "t"}))
    assert raw.poll(5000)
    assert unpack(raw.recv())["error"]["code"] == "UNAUTHENTICATED"


def test_req_socket_framing_is_answered_in_kind(kernel):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(kernel.address)
    try:
        sock.send(pack({"v": PROTOCOL_VERSION, "id": 3, "call": "proc.ping", "args": {"payload": 7}}))
        assert sock.poll(5000)
        assert unpack(sock.recv())["result"]["payload"] == 7
    finally:
        sock.close(linger=0)


def test_message_beyond_the_hard_limit_drops_only_that_connection(kernel, bystander):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(kernel.address)
    try:
        sock.send(b"\x00" * (MAX_MESSAGE_BYTES * 16 + 1))
        assert not sock.poll(500), "the kernel cannot answer a message ZeroMQ refused"
        assert bystander.proc_ping(payload=1)["payload"] == 1
    finally:
        sock.close(linger=0)
