"""audit.query handler: the caller sees only events that name it (as agent or target); the
kernel's operator (token in STATE/operator.token) sees all."""

from __future__ import annotations

from kernel.context import CallContext
from kernel.services.audit import AuditQuery


def audit_query(ctx: CallContext, args: dict) -> dict:
    is_operator = ctx.agent is ctx.kernel.operator
    query = AuditQuery(
        viewer=None if is_operator else ctx.caller,
        agent=args["agent"],
        event=args["event"],
        since=args["since"],
        limit=args["limit"],
    )
    return {"events": ctx.kernel.services.audit.query(query)}
