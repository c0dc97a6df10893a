"""proc.* handlers: registration (the handshake), exit, ps, ping."""

from __future__ import annotations

import os
import time

from kernel.context import CallContext
from syscalls.errors import SyscallError
from syscalls.table import PROTOCOL_VERSION


def proc_register(ctx: CallContext, args: dict) -> dict:
    name = args["name"]
    ctx.kernel.procs.check_free(name)
    secret = admit_identity(ctx, name, args["secret"])
    rec = ctx.kernel.admit_agent(name, args["pid"], args["meta"])
    return {
        "agent_id": rec.agent_id,
        "token": rec.token,
        "secret": secret,
        "protocol_version": PROTOCOL_VERSION,
        "kernel_pid": os.getpid(),
        "max_message_bytes": ctx.kernel.config.max_message_bytes,
    }


def proc_exit(ctx: CallContext, args: dict) -> dict:
    num_cancelled = ctx.kernel.retire_agent(ctx.agent, "exited", args["code"])
    return {"cancelled_requests": num_cancelled}


def proc_ps(ctx: CallContext, args: dict) -> dict:
    procs = ctx.kernel.procs
    now = time.monotonic()
    records = procs.all() if args["all"] else procs.live()
    active = ctx.kernel.llm.active_counts()  # one pass over the requests, not one per agent
    agents = []
    for rec in records:
        row = rec.to_wire(now)
        row["num_active_requests"] = active.get(rec.name, 0)
        agents.append(row)
    return {"agents": agents}


def proc_ping(ctx: CallContext, args: dict) -> dict:
    return {"pong": True, "payload": args["payload"], "kernel_pid": os.getpid(), "time": time.time()}


def admit_identity(ctx: CallContext, name: str, secret: str | None) -> str | None:
    """A new name's identity is created (its secret returned); a known one needs its secret
    (UNAUTHENTICATED otherwise, audited as bad_secret with the peer; the secret is never logged)."""
    try:
        return ctx.kernel.services.identities.admit(name, secret)
    except SyscallError as err:
        ctx.kernel.services.audit.record("bad_secret", agent=name, detail=f"proc.register: {err.message}")
        raise
