"""Round trips and validation of every message type, derived from the syscall table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalls.codec import pack, unpack
from syscalls.envelope import parse_request, reply_error, reply_ok, request, salvage_id, stream
from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import validate_args
from syscalls.table import PROTOCOL_VERSION, SYSCALLS
from tests.strategies import VALUES, valid_args

CALLS = sorted(SYSCALLS)
IDS = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(min_size=1, max_size=128))


@settings(max_examples=60)
@given(st.sampled_from(CALLS).flatmap(lambda name: st.tuples(st.just(name), valid_args(SYSCALLS[name]))),
       IDS, st.one_of(st.none(), st.text(min_size=1, max_size=40)))
def test_request_round_trip_and_validation(call_args, req_id, token):
    name, args = call_args
    wire = pack(request(req_id, name, args, token))
    parsed = parse_request(unpack(wire))
    assert (parsed.id, parsed.call, parsed.args, parsed.token) == (req_id, name, args, token)
    full = validate_args(SYSCALLS[name], parsed.args)
    assert set(full) == {f.name for f in SYSCALLS[name].args}
    for key, value in args.items():
        assert full[key] == value


@given(IDS, VALUES)
def test_reply_round_trip(req_id, result):
    assert unpack(pack(reply_ok(req_id, result))) == {"v": PROTOCOL_VERSION, "id": req_id, "ok": True, "result": result}


@given(st.one_of(st.none(), IDS), st.sampled_from(list(ErrorCode)), st.text(max_size=50))
def test_error_round_trip(req_id, code, message):
    msg = unpack(pack(reply_error(req_id, code, message)))
    assert msg["ok"] is False and msg["id"] == req_id
    assert msg["error"] == {"code": code.value, "message": message}


@given(IDS, st.lists(st.integers(0, 2**31), max_size=10), st.text(max_size=30))
def test_stream_round_trip(req_id, ids, text):
    chunk = {"request_id": "a/0", "token_ids": ids, "text": text}
    assert unpack(pack(stream(req_id, chunk))) == {"v": PROTOCOL_VERSION, "id": req_id, "stream": chunk}


@given(st.binary(max_size=64))
def test_unpack_junk_is_bad_frame_or_a_value(data):
    try:
        unpack(data)
    except SyscallError as err:
        assert err.code is ErrorCode.BAD_FRAME


def test_too_large():
    with pytest.raises(SyscallError) as e:
        unpack(pack("x" * 100), max_bytes=50)
    assert e.value.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize("mutate, code, needle", [
    (lambda m: m.pop("call"), ErrorCode.BAD_ENVELOPE, "'call' missing"),
    (lambda m: m.update(extra=1), ErrorCode.BAD_ENVELOPE, "'extra' unknown"),
    (lambda m: m.update(v=PROTOCOL_VERSION + 1), ErrorCode.UNSUPPORTED_VERSION, f"version {PROTOCOL_VERSION + 1}"),
    (lambda m: m.update(v="1"), ErrorCode.BAD_ENVELOPE, "'v'"),
    (lambda m: m.update(id=True), ErrorCode.BAD_ENVELOPE, "'id'"),
    (lambda m: m.update(id="x" * 129), ErrorCode.BAD_ENVELOPE, "'id'"),
    (lambda m: m.update(args=[1]), ErrorCode.BAD_ENVELOPE, "'args'"),
    (lambda m: m.update(token=5), ErrorCode.BAD_ENVELOPE, "'token'"),
    (lambda m: m.update(call=b"proc.ping"), ErrorCode.BAD_ENVELOPE, "'call'"),
])
def test_envelope_rejections(mutate, code, needle):
    msg = request(1, "proc.ping", {})
    mutate(msg)
    with pytest.raises(SyscallError) as e:
        parse_request(msg)
    assert e.value.code is code and needle in e.value.message


def test_salvage_id():
    assert salvage_id({"id": 5, "v": 9}) == 5
    assert salvage_id({"id": 1.5}) is None
    assert salvage_id([1]) is None


@settings(max_examples=80)
@given(st.sampled_from(CALLS).flatmap(lambda n: st.tuples(st.just(n), valid_args(SYSCALLS[n]))), st.data())
def test_validation_names_the_field(call_args, data):
    name, args = call_args
    spec = SYSCALLS[name]
    kind = data.draw(st.sampled_from(["unknown", "missing", "wrong_type"]))
    if kind == "unknown":
        args["no_such_field"] = 1
        field = "no_such_field"
    elif kind == "missing":
        required = [f for f in spec.args if f.required]
        if not required:
            return
        field = data.draw(st.sampled_from(required)).name
        args.pop(field, None)
    else:
        if not spec.args:
            return
        f = data.draw(st.sampled_from(spec.args))
        if "any" in f.type:
            return
        wrong = {"str": 3.5, "int": "7", "float": "x", "bool": 1, "map": [1], "list": {"a": 1}, "bytes": 1}
        bad = next(v for t, v in wrong.items() if not _accepts(f.type, v))
        args[f.name] = bad
        field = f.name
    with pytest.raises(SyscallError) as e:
        validate_args(spec, args)
    assert e.value.code is ErrorCode.INVALID_ARGUMENT
    assert f"'{field}" in e.value.message


def _accepts(type_name: str, value: object) -> bool:
    from syscalls.schema import _type_ok

    return _type_ok(value, type_name)


BOUNDED = [n for n in CALLS if any(f.max is not None and "int" in f.type.split("|") for f in SYSCALLS[n].args)]


@given(st.sampled_from(BOUNDED).flatmap(lambda n: st.tuples(st.just(n), valid_args(SYSCALLS[n]))), st.data())
def test_int_bounds_are_enforced(call_args, data):
    name, args = call_args
    bounded = [f for f in SYSCALLS[name].args if f.max is not None and "int" in f.type.split("|")]
    f = data.draw(st.sampled_from(bounded))
    args[f.name] = int(f.max) + data.draw(st.integers(1, 1000))
    with pytest.raises(SyscallError) as e:
        validate_args(SYSCALLS[name], args)
    assert e.value.code is ErrorCode.INVALID_ARGUMENT and f"'{f.name}'" in e.value.message
