"""Stable error codes of the aiosim protocol and the exception that carries them.

Codes are part of the wire contract (docs/protocol.md): never rename or reuse one.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    BAD_FRAME = "BAD_FRAME"  # not msgpack, or unexpected multipart framing
    BAD_ENVELOPE = "BAD_ENVELOPE"  # not a map, missing/extra/mistyped envelope fields
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    TOO_LARGE = "TOO_LARGE"  # message exceeds the kernel's max message size
    UNKNOWN_CALL = "UNKNOWN_CALL"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"  # the message names the field
    UNAUTHENTICATED = "UNAUTHENTICATED"  # token missing or wrong
    PERMISSION_DENIED = "PERMISSION_DENIED"  # no grant from the owner
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    TIMEOUT = "TIMEOUT"
    TOOL_ERROR = "TOOL_ERROR"
    CANCELLED = "CANCELLED"
    UNAVAILABLE = "UNAVAILABLE"  # no worker / service not ready
    SNAPSHOT_INVALID = "SNAPSHOT_INVALID"  # checksum or fingerprint mismatch on restore
    WORKER_FAILED = "WORKER_FAILED"
    REPLAY_DIVERGED = "REPLAY_DIVERGED"  # a request replayed after a crash made other tokens than before
    INTERNAL = "INTERNAL"


class SyscallError(Exception):
    """An error that becomes an error reply `{code, message}`."""

    def __init__(self, code: ErrorCode | str, message: str):
        super().__init__(f"{ErrorCode(code).value}: {message}")
        self.code = ErrorCode(code)
        self.message = message

    def to_wire(self) -> dict:
        return {"code": self.code.value, "message": self.message}
