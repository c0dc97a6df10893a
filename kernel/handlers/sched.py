"""sched.* handlers: scheduler introspection."""

from __future__ import annotations

from kernel.context import CallContext


def sched_stats(ctx: CallContext, args: dict) -> dict:
    from kernel.llm.info import sched_stats

    return sched_stats(ctx.kernel.llm, args["agent"], args["requests"])
