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

If the kernel dies and a new one starts on the same address (and state dir), the client notices
the lost connection while it waits (ZeroMQ reconnects with back-off), registers again under the
same name, re-attaches to its llm.generate calls in flight by request id (llm.attach: the kernel
resumes them from its journal, streaming only tokens not yet received) and sends its other calls
in flight again (so those run at least once). The caller sees a delay, not an error.
`reconnect=False` turns this off.
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
from zmq.utils.monitor import recv_monitor_message

from agents import curve, keyring
from syscalls.codec import pack, unpack
from syscalls.envelope import request
from syscalls.schema import Syscall
from syscalls.table import SYSCALLS, method_name

DEFAULT_TIMEOUT_S = 60.0
RECONNECT_IVL_MS = 100  # ZeroMQ's first reconnect attempt; it backs off, doubling up to the max
RECONNECT_IVL_MAX_MS = 2000
LINK_EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
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

    __slots__ = ("client", "req_id", "call", "args", "on_stream", "reply", "received", "link")

    def __init__(self, client: Client, req_id: int, call: str, args: dict, on_stream: Callable[[dict], None] | None):
        self.client, self.req_id, self.call, self.args, self.on_stream = client, req_id, call, args, on_stream
        self.reply: dict | None = None
        self.received = 0  # tokens received in stream messages
        self.link = client.link  # the connection it was sent on (counts disconnections)

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
                 client_keys: curve.ClientKeys = None, reconnect: bool = True):
        """Connect; with `name` (and no `token`), register. The name's identity secret is `secret`,
        else the one kept for it (see agents.keyring: `secret_file`, by default
        <state dir>/secrets/<name>.secret for an ipc address; False: memory only); a new identity's
        secret is kept there. On tcp:// the connection is CURVE-encrypted: `server_key` is the
        kernel's public key (default $AIOSIM_SERVER_KEY), `client_keys` this client's pair (default
        $AIOSIM_CLIENT_KEYS, else a fresh one); see agents.curve. `reconnect`: survive a kernel
        restart (see the module doc)."""
        self.address = address
        self.timeout_s = timeout_s
        self._sock = zmq.Context.instance().socket(zmq.DEALER)  # one Context per process
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self._sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        self._monitor: zmq.Socket | None = None
        try:
            curve.secure(self._sock, address, server_key, client_keys)
            if reconnect:
                self._monitor = self._sock.get_monitor_socket(LINK_EVENTS)
        except BaseException:
            self._sock.close(linger=0)
            raise
        self._sock.connect(address)
        self._ids = itertools.count(1)
        self._labels = itertools.count()
        self._session = os.urandom(3).hex()
        self._pending: dict[int, Pending] = {}
        self.link = 0  # disconnections seen so far
        self._is_down = False  # disconnected, not yet reconnected
        self._is_relinking = False
        self.num_reconnects = 0
        self.token = token
        self.name = name
        self.agent_id: int | None = None
        self._identity: tuple[dict | None, str | None, Path | None] | None = None  # meta, secret, secret file
        if name is not None and token is None:
            try:
                self._register(name, meta, secret, secret_file)
            except BaseException:
                self._close_sockets()
                raise

    def _register(self, name: str, meta: dict | None, secret: str | None, secret_file: str | Path | None | bool) -> None:
        path = keyring.default_secret_file(self.address, name) if secret_file in (None, True) else (
            Path(secret_file) if secret_file else None)
        secret = secret or keyring.load(self.address, name, path)
        reply = self.call("proc.register", name=name, pid=os.getpid(), meta=meta, secret=secret)
        if reply.get("secret"):
            keyring.keep(self.address, name, reply["secret"], path)
        self.token, self.agent_id = reply["token"], reply["agent_id"]
        self._identity = (meta, reply.get("secret") or secret, path)

    # ---- generic calls ----
    def submit(self, call: str, _on_stream: Callable[[dict], None] | None = None, **args: Any) -> Pending:
        """Send a call without waiting. Only arguments you pass are sent (the kernel fills defaults);
        an llm.generate without request_id gets a label from the client, so that it can re-attach."""
        if call == "llm.generate" and args.get("request_id") is None and self._monitor is not None:
            args["request_id"] = f"{self._session}.{next(self._labels)}"
        pending = Pending(self, next(self._ids), call, args, _on_stream)
        self._send(pending)
        return pending

    def _send(self, pending: Pending) -> None:
        self._pending[pending.req_id] = pending
        self._sock.send(pack(request(pending.req_id, pending.call, pending.args, self.token)))

    def call(self, call: str, _timeout_s: float | None = None, _on_stream: Callable[[dict], None] | None = None,
             **args: Any) -> Any:
        """Make one syscall and wait for its reply."""
        timeout = self.timeout_s if _timeout_s is None else _timeout_s
        return self.submit(call, _on_stream, **args).result(timeout)

    def _wait_for(self, pending: Pending, timeout_s: float | None) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        while pending.reply is None:
            wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(poller.poll(wait_ms))
            if self._monitor in ready:
                self._check_link()
            elif self._sock in ready:
                self._receive_one()
            elif deadline is not None and time.monotonic() >= deadline:
                self._pending.pop(pending.req_id, None)
                raise KernelError("TIMEOUT", f"no reply within {timeout_s} s", pending.call)

    # ---- surviving a kernel restart ----
    def _check_link(self) -> None:
        """Read the connection's events; after a reconnection, register again and re-send."""
        if self._monitor is None:
            return
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self.link += 1
                self._is_down = True
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and self._is_down:
                self._is_down = False
                if not self._is_relinking:  # (a reconnection during a relink: its re-sends are stale replies)
                    self._relink()

    def _relink(self) -> None:
        """A new kernel: the same name again, then every call in flight again (an llm.generate
        re-attaches by request id, from the tokens already received)."""
        self._is_relinking = True
        try:
            waiting = sorted(self._pending.values(), key=lambda p: p.req_id)
            self._pending.clear()
            if self._identity is not None:
                meta, secret, path = self._identity
                self.token = None
                self._register(self.name, meta, secret, path if path is not None else False)
            for p in waiting:
                if p.call == "llm.generate":
                    p.call, p.args = "llm.attach", {"request_id": p.args["request_id"], "received": p.received}
                elif p.call == "llm.attach":
                    p.args = {**p.args, "received": p.received}
                p.req_id, p.link = next(self._ids), self.link
                self._send(p)
            self.num_reconnects += 1
        finally:
            self._is_relinking = False

    def pump(self, timeout_ms: int = 0) -> int:
        """Receive every reply/stream message that arrives within timeout_ms (0: what is
        already here) and route it to its Pending. Returns how many were received. For
        drivers that multiplex many clients (see `fileno()`/`socket`)."""
        self._check_link()
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
            return  # a reply we no longer wait for (timed out, or sent again after a reconnection)
        if "stream" in msg:
            target.received += len(msg["stream"].get("token_ids") or ())
            if target.on_stream is not None:
                target.on_stream(msg["stream"])
            return
        if self._is_stale(target, msg):
            return  # sent to a kernel that died: it goes again once the new one is there
        target.reply = msg
        del self._pending[target.req_id]

    def _is_stale(self, target: Pending, msg: dict) -> bool:
        """A new kernel refused the token of the one that died (a call sent across the restart)."""
        if self._monitor is None or (msg.get("error") or {}).get("code") != "UNAUTHENTICATED":
            return False
        sent_on = target.link
        self._check_link()  # may re-send it right now
        return sent_on < self.link or self._is_down

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
            self._close_sockets()

    def _close_sockets(self) -> None:
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
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
