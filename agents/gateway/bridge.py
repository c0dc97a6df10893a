"""KernelBridge: the gateway's ZeroMQ side, on the event loop's thread (one thread owns every socket).

One SDK `Client` per API key, registered on first use under the name the kernel gives for that
secret (identity.whoami) and reused by every request of that key. Its socket's file descriptor is
watched by the event loop; stream messages and replies reach their requests as `on_event` calls.
Blocking calls (a key's registration, llm.info, sched.stats) run in the loop's executor, each on a
client of its own, so they never hold up requests in flight. Owner: the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from agents.gateway.errors import APIError, from_kernel
from agents.sdk import Client, KernelError, Pending

TICK_S = 0.1  # every client is also read this often (ZeroMQ's fd is edge-triggered; its monitor sees kernel restarts)
RETIRED = {"ok": False, "error": {"code": "UNAUTHENTICATED", "message": "the API key's agent was retired by the kernel"}}
OnEvent = Callable[[str, dict], None]  # ("stream", chunk) or ("reply", envelope)


@dataclass(slots=True)
class Flight:
    pending: Pending
    on_event: OnEvent


class KernelBridge:
    def __init__(self, address: str, loop: asyncio.AbstractEventLoop, **client_kw: Any) -> None:
        self.address, self.loop, self.client_kw = address, loop, client_kw
        self._clients: dict[str, Client] = {}  # api key -> its agent's client
        self._flights: dict[Client, list[Flight]] = {}
        self._registering: dict[str, asyncio.Future] = {}
        self._tick: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._on_tick()

    def close(self) -> None:
        """Deregister every agent (proc.exit) and close the sockets."""
        if self._tick is not None:
            self._tick.cancel()
        for client in list(self._flights):
            self._forget(client)

    # ---- calls ----
    async def call(self, call: str, **args: Any) -> Any:
        """A blocking syscall without a token, on a client of its own in the executor."""
        def blocking() -> Any:
            client = Client(self.address, **self.client_kw)
            try:
                return client.call(call, **args)
            finally:
                client.close()

        try:
            return await self.loop.run_in_executor(None, blocking)
        except KernelError as err:
            raise from_kernel(err.code, err.message) from None

    async def agent(self, key: str) -> str:
        """The agent name of an API key, registering it on first use (the kernel checks the secret)."""
        client = self._clients.get(key)
        if client is not None:
            return str(client.name)
        if key not in self._registering:
            self._registering[key] = self.loop.run_in_executor(None, self._register, key)
            try:
                client = await self._registering[key]
            finally:
                del self._registering[key]
            self._adopt(key, client)
            return str(client.name)
        await asyncio.shield(self._registering[key])
        return str(self._clients[key].name)

    def generate(self, key: str, args: dict, on_event: OnEvent) -> None:
        client = self._clients.get(key)
        if client is None:  # dropped since the request was authenticated
            on_event("reply", RETIRED)
            return
        pending = client.submit("llm.generate", lambda chunk: on_event("stream", chunk), **args)
        self._flights[client].append(Flight(pending, on_event))
        self.loop.call_soon(self._read, client)  # a send can swallow the fd's edge for what has already arrived

    def cancel(self, key: str, label: str) -> None:
        client = self._clients.get(key)
        if client is not None and any(f.pending.args.get("request_id") == label for f in self._flights[client]):
            client.submit("llm.cancel", request_id=label)  # its reply is dropped; the generate fails CANCELLED

    # ---- clients ----
    def _register(self, key: str) -> Client:
        """In the executor: whose secret the key is, then a registration as that agent."""
        try:
            anonymous = Client(self.address, **self.client_kw)
            try:
                name = anonymous.identity_whoami(secret=key)["name"]
            finally:
                anonymous.close()
            return Client(self.address, name=name, secret=key, secret_file=False, **self.client_kw)
        except KernelError as err:
            if err.code == "UNAUTHENTICATED":
                raise APIError(401, "incorrect API key provided", "authentication_error", None, "invalid_api_key") from None
            if err.code == "ALREADY_EXISTS":
                raise APIError(403, f"{err.message}: an agent is already registered under this key's identity",
                               "permission_error", None, "identity_in_use") from None
            raise from_kernel(err.code, err.message) from None

    def _adopt(self, key: str, client: Client) -> None:
        self._clients[key] = client
        self._flights[client] = []
        self.loop.add_reader(client.socket.getsockopt(zmq.FD), self._read, client)

    def _forget(self, client: Client) -> None:
        self.loop.remove_reader(client.socket.getsockopt(zmq.FD))
        del self._flights[client]
        for key in [key for key, c in self._clients.items() if c is client]:
            del self._clients[key]
        client.close()

    def _read(self, client: Client) -> None:
        """Route what arrived to its requests; hand finished calls' replies over. A token the kernel
        refuses (its identity was removed, its agent retired) drops the client: the key is looked up
        again next time."""
        flights = self._flights.get(client)
        if flights is None or not client.pump():
            return
        done = [f for f in flights if f.pending.is_done]
        for flight in done:
            flights.remove(flight)
            flight.on_event("reply", flight.pending.reply)
        if any((f.pending.reply or {}).get("error", {}).get("code") == "UNAUTHENTICATED" for f in done):
            for flight in flights:
                flight.on_event("reply", RETIRED)
            self._forget(client)

    def _on_tick(self) -> None:
        for client in list(self._flights):
            self._read(client)
        self._tick = self.loop.call_later(TICK_S, self._on_tick)
