"""Syscall dispatch: frames in, one reply out. The table is derived from syscalls.SYSCALLS.

Contract: runs on the kernel main thread; never raises; every message that can be addressed
gets exactly one reply (or a Deferred that will send it); every rejection is logged.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernel.context import DEFERRED, CallContext
from syscalls.codec import peek_key, unpack
from syscalls.envelope import parse_request, reply_error, reply_ok, salvage_id
from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import validate_args
from syscalls.table import SYSCALLS, method_name

if TYPE_CHECKING:
    from kernel.kernel import Kernel
    from kernel.procs import AgentRecord

log = logging.getLogger("aiosim.dispatch")

Handler = Callable[[CallContext, dict], Any]


def build_table() -> dict[str, Handler]:
    """One handler per declared syscall: kernel/handlers/<ns>.py:<ns>_<name>. Missing = startup error."""
    table: dict[str, Handler] = {}
    for name, call in SYSCALLS.items():
        module = importlib.import_module(f"kernel.handlers.{call.namespace}")
        fn = getattr(module, method_name(name), None)
        if fn is None:
            raise RuntimeError(f"no handler for syscall {name}: define {module.__name__}.{method_name(name)}")
        table[name] = fn
    return table


class Dispatcher:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.table = build_table()
        self.num_errors: dict[str, int] = {}

    def handle(self, payload: bytes, send: Callable[[dict], None], peer: str, is_req: bool = False) -> None:
        """is_req: the message came with REQ framing (an empty delimiter frame)."""
        msg: Any = None
        try:
            msg = unpack(payload, self.kernel.config.max_message_bytes)
            self._dispatch(msg, send, peer, is_req)
        except SyscallError as err:
            if err.code is ErrorCode.TOO_LARGE:
                msg = {"id": peek_key(payload, "id")}
            self._reject(send, salvage_id(msg), err, peer)
        except Exception as exc:  # a handler bug: report, keep serving
            log.exception("internal error on message from %s", peer)
            send(reply_error(salvage_id(msg), ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"))

    def reject_frames(self, send: Callable[[dict], None], num_frames: int, peer: str) -> None:
        err = SyscallError(ErrorCode.BAD_FRAME, f"expected one message frame, got {num_frames}")
        self._reject(send, None, err, peer)

    def _reject(self, send: Callable[[dict], None], req_id: Any, err: SyscallError, peer: str) -> None:
        self.num_errors[err.code.value] = self.num_errors.get(err.code.value, 0) + 1
        log.warning("rejected request %r from %s: %s", req_id, peer, err)
        send(reply_error(req_id, err.code, err.message))

    def _dispatch(self, msg: Any, send: Callable[[dict], None], peer: str, is_req: bool) -> None:
        req = parse_request(msg)
        call = SYSCALLS.get(req.call)
        if call is None:
            raise SyscallError(ErrorCode.UNKNOWN_CALL, f"unknown call '{req.call[:64]}'")
        agent = self._authenticate(call.needs_token, req.token, req.call, peer)
        args = validate_args(call, req.args)
        if is_req and call.is_streaming and args.get("stream"):
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, "field 'stream': streaming needs a DEALER socket "
                               "(a REQ socket takes one message per request: the first chunk, losing the reply)")
        if agent is not None:
            agent.num_syscalls += 1
        ctx = CallContext(self.kernel, call, agent, req.id, send)
        result = self.table[req.call](ctx, args)
        if result is not DEFERRED:
            send(reply_ok(req.id, result))

    def _authenticate(self, needs_token: bool, token: str | None, call: str, peer: str) -> AgentRecord | None:
        agent = self.kernel.procs.authenticate(token)
        if agent is not None or (token is None and not needs_token):
            return agent
        why = "absent" if token is None else "wrong or expired"
        self.kernel.services.audit.record("bad_token", agent="", detail=f"{call}: token {why} (peer {peer})")
        raise SyscallError(ErrorCode.UNAUTHENTICATED, f"token {why}: call proc.register first and send its token")
