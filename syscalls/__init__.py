"""The aiosim protocol: one syscall table, one codec, one envelope. No torch, no zmq here."""

from syscalls.errors import ErrorCode, SyscallError
from syscalls.table import PROTOCOL_VERSION, SYSCALLS

__all__ = ["ErrorCode", "SyscallError", "PROTOCOL_VERSION", "SYSCALLS"]
