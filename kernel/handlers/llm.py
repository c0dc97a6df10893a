"""llm.* handlers: thin; the LLM service owns requests."""

from __future__ import annotations

from kernel.context import CallContext


def llm_generate(ctx: CallContext, args: dict) -> object:
    return ctx.kernel.llm.submit(ctx, args)


def llm_cancel(ctx: CallContext, args: dict) -> dict:
    return {"cancelled": ctx.kernel.llm.cancel(ctx.caller, args["request_id"])}
