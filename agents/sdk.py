"""The agent SDK: a small client for the aiosim kernel. Imports no torch.

    from agents.sdk import Client
    with Client("ipc://state/kernel.sock", name="demo-0") as k:
        reply = k.llm_generate(prompt="Hello", max_new_tokens=8)
        k.mem_put(key="goal", value="write a story")

Every syscall in `syscalls.SYSCALLS` is a method named `<namespace>_<name>` whose keyword
arguments are the call's declared fields (generated from the table; see `help(Client)`).
Errors from the kernel raise `KernelError` with a stable `.code`; a missing reply raises
`KernelError` with code `TIMEOUT`. Several calls may be in flight at once: `submit()` returns a
`Pending` whose `.result()` waits for that call only.
"""

from __future__ import annotations

import inspect
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from agents import curve, keyring
from syscalls.codec import pack, unpack
from syscalls.envelope import request
from syscalls.schema import Syscall
from syscalls.table import SYSCALLS, method_name

DEFAULT_TIMEOUT_S = 60.0
# wire type -> annotation shown in signatures and help()
_ANNOTATIONS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "bytes": "bytes",
                "map": "dict", "list": "list", "any": "Any", "nil": "None"}


class KernelError(Exception):
    """An error reply from the kernel (or a local timeout/transport failure)."""

    def __init__(self, code: str, message: str, call: str = ""):
        super().__init__(f"{call + ': ' if call else ''}{code}: {message}")
        self.code = code
        self.message = message
        self.call = call


class Pending:
    """A call in flight. `.result()` returns its result or raises KernelError."""

    __slots__ = ("client", "req_id", "call", "on_stream", "reply")

    def __init__(self, client: Client, req_id: int, call: str, on_stream: Callable[[dict], None] | None):
        self.client, self.req_id, self.call, self.on_stream = client, req_id, call, on_stream
        self.reply: dict | None = None

    @property
    def is_done(self) -> bool:
        return self.reply is not None

    def result(self, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> Any:
        self.client._wait_for(self, timeout_s)
        assert self.reply is not None
        if self.reply.get("ok"):
            return self.reply.get("result")
        err = self.reply.get("error") or {}
        raise KernelError(str(err.get("code", "INTERNAL")), str(err.get("message", "")), self.call)


class Client:
    """A connection to the kernel. Not thread-safe: use one Client per thread."""

    def __init__(self, address: str, name: str | None = None, *, token: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, meta: dict | None = None, secret: str | None = None,
                 secret_file: str | Path | None | bool = None, server_key: curve.ServerKey = None,
                 client_keys: curve.ClientKeys = None):
        """Connect; with `name` (and no `token`), register. The name's identity secret is `secret`,
        else the one kept for it (see agents.keyring: `secret_file`, by default
        <state dir>/secrets/<name>.secret for an ipc address; False: memory only); a new identity's
        secret is kept there. On tcp:// the connection is CURVE-encrypted: `server_key` is the
        kernel's public key (default $AIOSIM_SERVER_KEY), `client_keys` this client's pair (default
        $AIOSIM_CLIENT_KEYS, else a fresh one); see agents.curve."""
        self.address = address
        self.timeout_s = timeout_s
        self._sock = zmq.Context.instance().socket(zmq.DEALER)  # one Context per process
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            curve.secure(self._sock, address, server_key, client_keys)
        except BaseException:
            self._sock.close(linger=0)
            raise
        self._sock.connect(address)
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self.token = token
        self.name = name
        self.agent_id: int | None = None
        if name is not None and token is None:
            try:
                self._register(name, meta, secret, secret_file)
            except BaseException:
                self._sock.close(linger=0)
                raise

    def _register(self, name: str, meta: dict | None, secret: str | None, secret_file: str | Path | None | bool) -> None:
        path = keyring.default_secret_file(self.address, name) if secret_file in (None, True) else (
            Path(secret_file) if secret_file else None)
        secret = secret or keyring.load(self.address, name, path)
        reply = self.call("proc.register", name=name, pid=os.getpid(), meta=meta, secret=secret)
        if reply.get("secret"):
            keyring.keep(self.address, name, reply["secret"], path)
        self.token, self.agent_id = reply["token"], reply["agent_id"]

    # ---- generic calls ----
    def submit(self, call: str, _on_stream: Callable[[dict], None] | None = None, **args: Any) -> Pending:
        """Send a call without waiting. Only arguments you pass are sent (the kernel fills defaults)."""
        req_id = next(self._ids)
        pending = Pending(self, req_id, call, _on_stream)
        self._pending[req_id] = pending
        self._sock.send(pack(request(req_id, call, args, self.token)))
        return pending

    def call(self, call: str, _timeout_s: float | None = None, _on_stream: Callable[[dict], None] | None = None,
             **args: Any) -> Any:
        """Make one syscall and wait for its reply."""
        timeout = self.timeout_s if _timeout_s is None else _timeout_s
        return self.submit(call, _on_stream, **args).result(timeout)

    def _wait_for(self, pending: Pending, timeout_s: float | None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while pending.reply is None:
            wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if self._sock.poll(wait_ms):
                self._receive_one()
            elif deadline is not None and time.monotonic() >= deadline:
                self._pending.pop(pending.req_id, None)
                raise KernelError("TIMEOUT", f"no reply within {timeout_s} s", pending.call)

    def pump(self, timeout_ms: int = 0) -> int:
        """Receive every reply/stream message that arrives within timeout_ms (0: what is
        already here) and route it to its Pending. Returns how many were received. For
        drivers that multiplex many clients (see `fileno()`/`socket`)."""
        count = 0
        while self._sock.poll(timeout_ms if count == 0 else 0):
            self._receive_one()
            count += 1
        return count

    @property
    def socket(self) -> zmq.Socket:
        """The DEALER socket, for registering with a zmq.Poller; read only through pump()."""
        return self._sock

    def _receive_one(self) -> None:
        msg = unpack(self._sock.recv())
        if not isinstance(msg, dict):
            return
        target = self._pending.get(msg.get("id"))
        if target is None:
            return  # a reply we no longer wait for (timed out) or an unaddressed error
        if "stream" in msg:
            if target.on_stream is not None:
                target.on_stream(msg["stream"])
            return
        target.reply = msg
        del self._pending[target.req_id]

    # ---- lifecycle ----
    def close(self, code: int = 0) -> None:
        """Deregister (proc.exit) if registered, then close the socket."""
        try:
            if self.agent_id is not None and self.token is not None:
                self.call("proc.exit", _timeout_s=5.0, code=code)
        except KernelError:
            pass
        finally:
            self.agent_id = None
            self._sock.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(1 if exc_type else 0)


def _make_method(spec: Syscall) -> Callable[..., Any]:
    def method(self: Client, _timeout_s: float | None = None, _on_stream: Callable[[dict], None] | None = None,
               **args: Any) -> Any:
        return self.call(spec.name, _timeout_s, _on_stream, **args)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in spec.args:
        ann = " | ".join(_ANNOTATIONS.get(t, t) for t in f.type.split("|"))
        default = inspect.Parameter.empty if f.required else f.default
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann))
    method.__signature__ = inspect.Signature(params)
    method.__name__ = method_name(spec.name)
    arg_doc = "\n".join(f"    {f.name} ({f.type}{', required' if f.required else ''}): {f.doc}" for f in spec.args)
    method.__doc__ = f"{spec.name}: {spec.doc}\n\nArguments:\n{arg_doc or '    none'}\n\nReturns: {spec.result}"
    return method


for _spec in SYSCALLS.values():
    setattr(Client, method_name(_spec.name), _make_method(_spec))
