"""KernelBridge: the gateway's one thread that owns its ZeroMQ sockets (the SDK is not thread-safe).

The asyncio side posts work with `run(fn)` and gets stream messages and replies back through
`loop.call_soon_threadsafe`. One SDK `Client` per API key, registered on first use under the name
the kernel gives for that secret (identity.whoami) and reused by every request of that key;
one anonymous client for identity.whoami and llm.info. Owner of every Client: the bridge thread.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from agents.sdk import Client, KernelError, Pending
from gateway.errors import APIError, from_kernel

POLL_MS = 100  # also how often each client's connection monitor is read (kernel restarts)
RETIRED = {"ok": False, "error": {"code": "UNAUTHENTICATED", "message": "the API key's agent was retired by the kernel"}}
OnEvent = Callable[[str, dict], None]  # ("stream", chunk) or ("reply", envelope); on the event loop


@dataclass(slots=True)
class Flight:
    pending: Pending
    on_event: OnEvent


class KernelBridge:
    def __init__(self, address: str, loop: asyncio.AbstractEventLoop, **client_kw: Any) -> None:
        self.address, self.loop, self.client_kw = address, loop, client_kw
        self._commands: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._wake_recv, self._wake_send = socket.socketpair()
        self._poller = zmq.Poller()
        self._clients: dict[str, Client] = {}  # api key -> its agent's client
        self.names: dict[str, str] = {}  # api key -> agent name, for the event loop (written only through it)
        self._flights: dict[Client, list[Flight]] = {}
        self._anonymous: Client | None = None
        self._thread = threading.Thread(target=self._loop, name="kernel-bridge", daemon=True)

    # ---- the asyncio side ----
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Deregister every agent and close the sockets; returns when the thread has ended."""
        self._post(None)
        self._thread.join(timeout=30)

    async def run(self, fn: Callable[[], Any]) -> Any:
        """fn() on the bridge thread; its result, or its exception raised here."""
        future = self.loop.create_future()

        def command() -> None:
            try:
                result = fn()
            except KernelError as err:
                self.loop.call_soon_threadsafe(_settle, future, None, from_kernel(err.code, err.message))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                self.loop.call_soon_threadsafe(_settle, future, result, None)

        self._post(command)
        return await future

    def generate(self, key: str, args: dict, on_event: OnEvent) -> None:
        self._post(lambda: self._submit(key, args, on_event))

    def cancel(self, key: str, label: str) -> None:
        self._post(lambda: self._cancel(key, label))

    def _post(self, command: Callable[[], None] | None) -> None:
        self._commands.put(command)
        self._wake_send.send(b"\0")

    # ---- the bridge thread ----
    def agent(self, key: str) -> str:
        """The agent name of an API key, registering it on first use (the kernel checks the secret)."""
        client = self._clients.get(key)
        if client is None:
            try:
                name = self.anonymous().identity_whoami(secret=key)["name"]
                client = Client(self.address, name=name, secret=key, secret_file=False, **self.client_kw)
            except KernelError as err:
                if err.code == "UNAUTHENTICATED":
                    raise APIError(401, "incorrect API key provided", "authentication_error", None, "invalid_api_key") from None
                if err.code == "ALREADY_EXISTS":
                    raise APIError(403, f"{err.message}: an agent is already registered under this key's identity",
                                   "permission_error", None, "identity_in_use") from None
                raise from_kernel(err.code, err.message) from None
            self._clients[key] = client
            self._flights[client] = []
            self._poller.register(client.socket, zmq.POLLIN)
            self.loop.call_soon_threadsafe(self.names.__setitem__, key, str(client.name))
        return str(client.name)

    def anonymous(self) -> Client:
        if self._anonymous is None:
            self._anonymous = Client(self.address, **self.client_kw)
        return self._anonymous

    def _submit(self, key: str, args: dict, on_event: OnEvent) -> None:
        client = self._clients.get(key)
        if client is None:  # dropped since the request was authenticated
            self.loop.call_soon_threadsafe(on_event, "reply", RETIRED)
            return
        pending = client.submit("llm.generate", lambda chunk: self.loop.call_soon_threadsafe(on_event, "stream", chunk), **args)
        self._flights[client].append(Flight(pending, on_event))

    def _cancel(self, key: str, label: str) -> None:
        client = self._clients.get(key)
        if client is not None and any(f.pending.args.get("request_id") == label for f in self._flights[client]):
            client.submit("llm.cancel", request_id=label)  # its reply is dropped; the generate fails CANCELLED

    def _loop(self) -> None:
        self._poller.register(self._wake_recv, zmq.POLLIN)
        try:
            while self._serve_commands(dict(self._poller.poll(POLL_MS))):
                for client in list(self._flights):
                    if client.pump():
                        self._deliver(client)
        finally:
            self._close()

    def _serve_commands(self, ready: dict) -> bool:
        if self._wake_recv.fileno() not in ready:  # (a plain socket comes back as its fd)
            return True
        self._wake_recv.recv(4096)
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return True
            if command is None:
                return False
            command()

    def _deliver(self, client: Client) -> None:
        """Hand finished calls' replies to their requests. A token the kernel refuses (its identity
        was removed, its agent retired) drops the client: the key is looked up again next time."""
        flights = self._flights[client]
        done = [f for f in flights if f.pending.is_done]
        for flight in done:
            flights.remove(flight)
            self.loop.call_soon_threadsafe(flight.on_event, "reply", flight.pending.reply)
        if any((f.pending.reply or {}).get("error", {}).get("code") == "UNAUTHENTICATED" for f in done):
            self._drop(client)

    def _drop(self, client: Client) -> None:
        for flight in self._flights.pop(client):
            self.loop.call_soon_threadsafe(flight.on_event, "reply", RETIRED)
        self._poller.unregister(client.socket)
        for key in [key for key, c in self._clients.items() if c is client]:
            del self._clients[key]
            self.loop.call_soon_threadsafe(self.names.pop, key, None)
        client.close()

    def _close(self) -> None:
        for client in self._clients.values():
            client.close()
        if self._anonymous is not None:
            self._anonymous.close()
        self._wake_recv.close()
        self._wake_send.close()


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
