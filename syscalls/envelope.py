"""The envelope: request, reply, stream and error messages, and their strict checks.

Request: {v, id, call, args[, token]}. Reply: {v, id, ok: true, result} or
{v, id, ok: false, error: {code, message}}. Stream: {v, id, stream: {...}} before the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syscalls.errors import ErrorCode, SyscallError
from syscalls.table import PROTOCOL_VERSION

REQUEST_KEYS = {"v", "id", "call", "args", "token"}
REQUIRED_KEYS = {"v", "id", "call", "args"}
MAX_ID_LEN = 128


@dataclass(slots=True)
class Request:
    id: int | str
    call: str
    args: dict
    token: str | None


def request(req_id: int | str, call: str, args: dict, token: str | None = None) -> dict:
    msg = {"v": PROTOCOL_VERSION, "id": req_id, "call": call, "args": args}
    if token is not None:
        msg["token"] = token
    return msg


def reply_ok(req_id: Any, result: Any) -> dict:
    return {"v": PROTOCOL_VERSION, "id": req_id, "ok": True, "result": result}


def reply_error(req_id: Any, code: ErrorCode | str, message: str) -> dict:
    err = {"code": ErrorCode(code).value, "message": message}
    return {"v": PROTOCOL_VERSION, "id": req_id, "ok": False, "error": err}


def stream(req_id: Any, chunk: dict) -> dict:
    return {"v": PROTOCOL_VERSION, "id": req_id, "stream": chunk}


def salvage_id(msg: Any) -> int | str | None:
    """Best-effort request id of a malformed message, so its error can still be matched."""
    if isinstance(msg, dict):
        rid = msg.get("id")
        if _is_valid_id(rid):
            return rid
    return None


def _is_valid_id(rid: Any) -> bool:
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return -(2**63) <= rid < 2**64
    return isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LEN


def _check_keys(keys: set) -> None:
    """Raise BAD_ENVELOPE naming the first wrong key of an envelope."""
    if not all(isinstance(k, str) for k in keys):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope keys must be strings")
    missing = sorted(REQUIRED_KEYS - keys)
    if missing:
        raise SyscallError(ErrorCode.BAD_ENVELOPE, f"envelope field '{missing[0]}' missing")
    extra = sorted(keys - REQUEST_KEYS)
    if extra:
        raise SyscallError(ErrorCode.BAD_ENVELOPE, f"envelope field '{extra[0]}' unknown")


def parse_request(msg: Any) -> Request:
    """Check the envelope strictly; raise BAD_ENVELOPE / UNSUPPORTED_VERSION."""
    if not isinstance(msg, dict):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, f"message must be a map, got {type(msg).__name__}")
    keys = msg.keys()
    if not (REQUIRED_KEYS <= keys <= REQUEST_KEYS):  # the common case skips the precise checks below
        _check_keys(set(keys))
    version = msg["v"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope field 'v' must be an int")
    if version != PROTOCOL_VERSION:
        raise SyscallError(ErrorCode.UNSUPPORTED_VERSION, f"protocol version {version} unsupported; kernel speaks {PROTOCOL_VERSION}")
    if not _is_valid_id(msg["id"]):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope field 'id' must be an int or a string of 1-128 chars")
    if not isinstance(msg["call"], str):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope field 'call' must be a string")
    if not isinstance(msg["args"], dict):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope field 'args' must be a map")
    token = msg.get("token")
    if token is not None and not isinstance(token, str):
        raise SyscallError(ErrorCode.BAD_ENVELOPE, "envelope field 'token' must be a string")
    return Request(msg["id"], msg["call"], msg["args"], token)
