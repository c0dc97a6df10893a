"""What a syscall handler sees: the kernel, the calling agent, and a way to reply later.

Handlers are `def <ns>_<name>(ctx: CallContext, args: dict) -> result` in
`kernel/handlers/<ns>.py`. They validate nothing themselves beyond what the schema cannot say,
call a manager, and return the result or raise SyscallError. A handler that cannot answer at
once calls `ctx.defer()` and returns `DEFERRED`; the Deferred replies later, exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syscalls.errors import ErrorCode
from syscalls.schema import Syscall

if TYPE_CHECKING:
    from kernel.kernel import Kernel
    from kernel.procs import AgentRecord

DEFERRED = object()  # sentinel a handler returns after ctx.defer()


class Deferred:
    """A reply owed to one request. Owner: the kernel main thread. Replies at most once."""

    __slots__ = ("_send", "request_id", "is_done", "agent")

    def __init__(self, send: Callable[[dict], None], request_id: Any, agent: AgentRecord | None):
        self._send = send
        self.request_id = request_id
        self.agent = agent
        self.is_done = False

    def ok(self, result: Any) -> None:
        from syscalls.envelope import reply_ok

        self._finish(reply_ok(self.request_id, result))

    def error(self, code: ErrorCode | str, message: str) -> None:
        from syscalls.envelope import reply_error

        self._finish(reply_error(self.request_id, code, message))

    def stream(self, chunk: dict) -> None:
        from syscalls.envelope import stream

        if not self.is_done:
            self._send(stream(self.request_id, chunk))

    def _finish(self, msg: dict) -> None:
        if self.is_done:
            return
        self.is_done = True
        self._send(msg)


@dataclass(slots=True)
class CallContext:
    kernel: Kernel
    call: Syscall
    agent: AgentRecord | None  # None only for calls declared needs_token=False made anonymously
    request_id: Any
    send: Callable[[dict], None]

    def defer(self) -> Deferred:
        return Deferred(self.send, self.request_id, self.agent)

    @property
    def caller(self) -> str:
        """The caller's agent name ('' when anonymous)."""
        return self.agent.name if self.agent is not None else ""
