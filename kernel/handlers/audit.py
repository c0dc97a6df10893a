"""audit.query handler: the caller sees only events that name it (as agent or target)."""

from __future__ import annotations

from kernel.context import CallContext
from kernel.services.audit import AuditQuery


def audit_query(ctx: CallContext, args: dict) -> dict:
    query = AuditQuery(viewer=ctx.caller, agent=args["agent"], event=args["event"],
                       since=args["since"], limit=args["limit"])
    return {"events": ctx.kernel.services.audit.query(query)}
