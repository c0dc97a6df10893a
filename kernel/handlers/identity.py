"""identity.* handlers: the operator creates, lists and deletes identities (aiosim agent add|list|rm);
anyone holding a secret may ask whose it is (identity.whoami)."""

from __future__ import annotations

from kernel.context import CallContext
from syscalls.errors import ErrorCode, SyscallError


def _require_operator(ctx: CallContext) -> None:
    if ctx.agent is not ctx.kernel.operator:
        ctx.kernel.services.audit.record("deny", agent=ctx.caller, target="operator", detail=ctx.call.name)
        raise SyscallError(ErrorCode.PERMISSION_DENIED, f"{ctx.call.name} is for the operator only")


def identity_add(ctx: CallContext, args: dict) -> dict:
    _require_operator(ctx)
    secret = ctx.kernel.services.identities.create(args["name"])
    ctx.kernel.services.audit.record("identity", agent=args["name"], detail="created by the operator")
    return {"name": args["name"], "secret": secret}


def identity_list(ctx: CallContext, args: dict) -> dict:
    _require_operator(ctx)
    rows = ctx.kernel.services.identities.list()
    for row in rows:
        row["is_live"] = ctx.kernel.procs.is_live_name(row["name"])
    return {"identities": rows}


def identity_remove(ctx: CallContext, args: dict) -> dict:
    _require_operator(ctx)
    if not ctx.kernel.services.identities.exists(args["name"]):
        return {"removed": False}
    ctx.kernel.forget_identity(args["name"])
    return {"removed": True}


def identity_whoami(ctx: CallContext, args: dict) -> dict:
    name = ctx.kernel.services.identities.find(args["secret"])
    if name is None:
        ctx.kernel.services.audit.record("bad_secret", agent=ctx.caller, detail="identity.whoami: no identity has this secret")
        raise SyscallError(ErrorCode.UNAUTHENTICATED, "no identity has this secret")
    return {"name": name}
