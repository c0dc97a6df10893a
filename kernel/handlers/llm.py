"""llm.* handlers: thin; the LLM service owns requests."""

from __future__ import annotations

from kernel.context import CallContext


def llm_generate(ctx: CallContext, args: dict) -> object:
    return ctx.kernel.llm.submit(ctx, args)


def llm_attach(ctx: CallContext, args: dict) -> object:
    return ctx.kernel.llm.attach(ctx, args)


def llm_cancel(ctx: CallContext, args: dict) -> dict:
    owner = ctx.kernel.services.access.check(ctx.caller, args["owner"], "snapshots", "write", ctx.call.name)
    return {"cancelled": ctx.kernel.llm.cancel(owner, args["request_id"])}


def llm_snapshots(ctx: CallContext, args: dict) -> dict:
    owner = ctx.kernel.services.access.check(ctx.caller, args["owner"], "snapshots", "read", ctx.call.name)
    return {"snapshots": ctx.kernel.llm.snapshots(owner)}


def llm_info(ctx: CallContext, args: dict) -> dict:
    from kernel.llm.info import model_info

    return model_info(ctx.kernel.llm)
