"""sched.* handlers: scheduler introspection."""

from __future__ import annotations

from kernel.context import CallContext


def sched_stats(ctx: CallContext, args: dict) -> dict:
    return ctx.kernel.llm.stats(args["agent"], args["requests"])
