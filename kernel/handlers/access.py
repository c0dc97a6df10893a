"""access.* handlers: the caller is always the owner of the grants it gives or revokes."""

from __future__ import annotations

from kernel.context import CallContext


def access_grant(ctx: CallContext, args: dict) -> dict:
    access = ctx.kernel.services.access
    return {"grant_id": access.grant(ctx.caller, args["grantee"], args["resource"], args["mode"])}


def access_revoke(ctx: CallContext, args: dict) -> dict:
    access = ctx.kernel.services.access
    return {"revoked": access.revoke(ctx.caller, args["grantee"], args["resource"])}


def access_list(ctx: CallContext, args: dict) -> dict:
    access = ctx.kernel.services.access
    return {
        "given": [g.to_wire() for g in access.given(ctx.caller)],
        "received": [g.to_wire() for g in access.received(ctx.caller)],
    }
