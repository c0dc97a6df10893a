"""mem.* handlers: access check, then the MemoryManager (args arrive schema-validated)."""

from __future__ import annotations

from kernel.context import CallContext
from syscalls.errors import ErrorCode, SyscallError


def _owner(ctx: CallContext, args: dict, mode: str) -> str:
    """The effective owner, after the grant check. Memory lives only as long as its agent, so
    another agent's memory is reachable only while that agent runs (grants outlive agents)."""
    owner = ctx.kernel.services.access.check(
        ctx.caller, args["owner"], "memory", mode, ctx.call.name
    )
    if owner != ctx.caller and not ctx.kernel.procs.is_live_name(owner):
        raise SyscallError(ErrorCode.NOT_FOUND, f"agent {owner!r} is not running; its memory is gone")
    return owner


def mem_put(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "write")
    size, evicted = ctx.kernel.services.memory.put(owner, args["key"], args["value"])
    return {"bytes": size, "evicted": evicted}


def mem_get(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    value, was_evicted = ctx.kernel.services.memory.get(owner, args["key"])
    return {"value": value, "was_evicted": was_evicted}


def mem_list(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    memory = ctx.kernel.services.memory
    return {
        "entries": memory.list(owner),
        "used_bytes": memory.used_bytes(owner),
        "quota_bytes": memory.quota_bytes,
    }


def mem_search(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    return {"hits": ctx.kernel.services.memory.search(owner, args["query"], args["limit"])}


def mem_delete(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "write")
    return {"deleted": ctx.kernel.services.memory.delete(owner, args["key"])}
