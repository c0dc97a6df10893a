"""Runs one agent as its own OS process: `aiosim agent run KIND [--index I] --address ADDR`.

An agent program is a module `agents.examples.<kind>` (or any `module:function` path) with
`run(agent: AgentContext) -> dict`. The runtime registers the agent (name `<kind>-<index>`
unless --name), runs the program, writes its result as JSON (--result-file), deregisters and
exits 0; on an error it exits 1 and the kernel frees everything the agent held.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.sdk import Client, KernelError

log = logging.getLogger("aiosim.agent")
EXIT_OK, EXIT_FAILED, EXIT_NO_KERNEL = 0, 1, 2


@dataclass(slots=True)
class AgentContext:
    """What an agent program gets: its client, identity and deterministic inputs."""

    client: Client
    name: str
    kind: str
    index: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def request_id(self, n: int) -> str:
        """Stable request label: '<name>/<n>' (e.g. 'math-0/3')."""
        return f"{self.name}/{n}"


def resolve_program(kind: str) -> Callable[[AgentContext], dict]:
    module_name, _, func = kind.partition(":")
    if "." not in module_name:
        module_name = f"agents.examples.{module_name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SystemExit(f"aiosim agent: no agent program '{kind}' ({exc}); see `aiosim agent programs`") from None
    return getattr(module, func or "run")


def parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"aiosim agent: --param expects KEY=VALUE, got '{item}'")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def run_agent(args: argparse.Namespace) -> int:
    program = resolve_program(args.kind)
    kind = args.kind.partition(":")[0].rsplit(".", 1)[-1]
    name = args.name or f"{kind}-{args.index}"
    started = time.monotonic()
    try:
        client = Client(args.address, name=name, timeout_s=args.timeout_s, meta={"kind": kind, "index": args.index},
                        secret_file=args.secret_file, server_key=args.server_key, client_keys=args.client_keys)
    except KernelError as exc:
        print(f"aiosim agent {name}: cannot register at {args.address}: {exc}. Is `aiosim kernel` running there?",
              file=sys.stderr)
        return EXIT_NO_KERNEL
    ctx = AgentContext(client, name, kind, args.index, args.seed, parse_params(args.param))
    code, result = EXIT_OK, {}
    try:
        if args.start_file:
            wait_at_gate(args.start_file)
        result = program(ctx) or {}
    except Exception as exc:
        log.exception("agent %s failed", name)
        code, result = EXIT_FAILED, {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close(code)
    if args.result_file:
        result = {"name": name, "pid": os.getpid(), "elapsed_s": time.monotonic() - started, **result}
        with open(args.result_file, "w") as f:
            json.dump(result, f)
    return code


def wait_at_gate(path: str) -> None:
    """A start gate, so that agents register first and then start together: block until whoever
    holds an exclusive lock (flock) on `path` releases it (at once if nobody does). Blocking in
    the kernel, not polling: a thousand waiting agents cost no CPU."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", help="agent program: an example (hello, idle, math, narrative, rec, travel) or module:function")
    p.add_argument("--address", required=True, help="kernel address, e.g. ipc://state/kernel.sock")
    p.add_argument("--index", type=int, default=0, help="instance index; the agent is named <kind>-<index>")
    p.add_argument("--name", help="agent name (default <kind>-<index>)")
    p.add_argument("--seed", type=int, default=0, help="seed for the agent's scripted plan")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="program parameter (JSON value)")
    p.add_argument("--timeout-s", type=float, default=600.0, help="per-call reply timeout")
    p.add_argument("--result-file", help="write the agent's result as JSON here")
    p.add_argument("--start-file", help="a start gate: after registering, wait until nobody holds an exclusive "
                   "flock on this file before running the program")
    p.add_argument("--server-key", help="tcp:// only: the kernel's CURVE public key or a file with it (default $AIOSIM_SERVER_KEY)")
    p.add_argument("--client-keys", help="tcp:// only: this agent's key pair file from `aiosim keygen` (default $AIOSIM_CLIENT_KEYS)")
    p.add_argument("--secret-file", help="the name's identity secret (default STATE/secrets/NAME.secret for an "
                   "ipc://STATE/kernel.sock address); created, mode 0600, on the name's first registration")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agents", description="Run one aiosim agent process.")
    add_arguments(p)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    return run_agent(p.parse_args(argv))
