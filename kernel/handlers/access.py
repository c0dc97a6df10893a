"""access.* handlers: the caller is always the owner of the grants it gives or revokes."""

from __future__ import annotations

from kernel.context import CallContext
from kernel.services.identity import RESERVED
from syscalls.errors import ErrorCode, SyscallError


def access_grant(ctx: CallContext, args: dict) -> dict:
    """The grantee must have an identity: a grant to an unclaimed name would go to whoever claims it first."""
    services, grantee = ctx.kernel.services, args["grantee"]
    if grantee not in RESERVED and not services.identities.exists(grantee):
        raise SyscallError(ErrorCode.NOT_FOUND, f"field 'grantee': no identity {grantee!r} (it must register once, "
                           "or the operator adds it: aiosim agent add)")
    return {"grant_id": services.access.grant(ctx.caller, grantee, args["resource"], args["mode"])}


def access_revoke(ctx: CallContext, args: dict) -> dict:
    access = ctx.kernel.services.access
    return {"revoked": access.revoke(ctx.caller, args["grantee"], args["resource"])}


def access_list(ctx: CallContext, args: dict) -> dict:
    access = ctx.kernel.services.access
    return {
        "given": [g.to_wire() for g in access.given(ctx.caller)],
        "received": [g.to_wire() for g in access.received(ctx.caller)],
    }
