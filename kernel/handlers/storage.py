"""storage.* handlers: access check, then the StorageManager (args arrive schema-validated)."""

from __future__ import annotations

from kernel.context import CallContext


def _owner(ctx: CallContext, args: dict, mode: str) -> str:
    return ctx.kernel.services.access.check(
        ctx.caller, args["owner"], "storage", mode, ctx.call.name
    )


def storage_put(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "write")
    return {"version": ctx.kernel.services.storage.put(owner, args["key"], args["value"])}


def storage_get(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    value, version = ctx.kernel.services.storage.get(owner, args["key"], args["version"])
    return {"value": value, "version": version}


def storage_list(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    return {"keys": ctx.kernel.services.storage.list(owner, args["prefix"])}


def storage_delete(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "write")
    version = ctx.kernel.services.storage.delete(owner, args["key"])
    return {"deleted": version is not None, "version": version}


def storage_versions(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    return {"versions": ctx.kernel.services.storage.versions(owner, args["key"])}


def storage_rollback(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "write")
    return {"version": ctx.kernel.services.storage.rollback(owner, args["key"], args["version"])}


def storage_search(ctx: CallContext, args: dict) -> dict:
    owner = _owner(ctx, args, "read")
    return {"hits": ctx.kernel.services.storage.search(owner, args["query"], args["limit"])}
