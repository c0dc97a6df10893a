"""tool.* handlers. tool.call never blocks the loop: it defers, and the pool replies later."""

from __future__ import annotations

from typing import Any

from kernel.context import DEFERRED, CallContext
from kernel.services.tools.calls import ToolOutcome


def tool_list(ctx: CallContext, args: dict) -> dict:
    return {"tools": ctx.kernel.services.tools.registry.describe()}


def tool_call(ctx: CallContext, args: dict) -> Any:
    pool = ctx.kernel.services.tools.pool
    pool.registry.get(args["name"]).validate(args["args"])  # NOT_FOUND / INVALID_ARGUMENT now
    d = ctx.defer()

    def done(outcome: ToolOutcome) -> None:
        if outcome.ok:
            d.ok({"result": outcome.result})
        else:
            d.error(outcome.code, outcome.message)

    pool.submit(ctx.caller, args["name"], args["args"], args["timeout_s"], done)
    return DEFERRED
