"""Surviving a kernel restart, the LLM service's side: the requests an earlier kernel journaled
(resumed at start-up), the replies kept for llm.attach, the attach calls, and the grace period
after which a request whose agent did not come back is cancelled.

Owner: LLMService (kernel main thread); it calls `park` whenever an agent's request leaves.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from kernel.context import DEFERRED, CallContext
from kernel.llm.journal import Journal, ParkedReply
from kernel.llm.keys import checkpoint_key
from kernel.llm.leftovers import reconcile_snapshots
from kernel.llm.requests import Submission, full_request_id
from syscalls.errors import ErrorCode, SyscallError

if TYPE_CHECKING:
    from kernel.llm.service import LLMService

log = logging.getLogger("aiosim.llm")


class Reattachment:
    def __init__(self, service: LLMService) -> None:
        self.service = service
        self.grace_s = service.config.reattach_grace_s
        self.parked: dict[str, ParkedReply] = {}  # replies kept for llm.attach (grace period)
        self.waiting: list[tuple[CallContext, dict]] = []  # llm.attach calls waiting for the model

    def recover(self, journal: Journal) -> None:
        """Before any worker starts: keep the snapshots the earlier kernel's requests resume
        from (delete the rest) and queue those requests, their replies awaiting llm.attach."""
        s = self.service
        found, self.parked = journal.recover()
        keep = [checkpoint_key(j.checkpoint[0], j.checkpoint[1]) for j in found if j.checkpoint]
        left = reconcile_snapshots(s.config.state_dir / "snapshots.lmdb", keep)
        if left:
            log.warning("removed %d snapshot entries left in %s by an earlier kernel", left, s.config.state_dir)
        for j in found:
            sub = Submission(j.rid, j.agent, j.args, time.monotonic(), None, journaled=True, resume=j.checkpoint)
            sub.delivered = j.delivered
            s.live.add(sub)
            s.unready.append(sub)
        if found:
            log.warning("recovered %d request(s) from the journal (%d from checkpoints); their agents have %.0f s to "
                        "re-attach", len(found), len(keep), self.grace_s)
            s.kernel.loop.call_later(self.grace_s, self._expire_detached)
        s.kernel.loop.call_every(max(1.0, self.grace_s / 4), self._expire_replies)

    def park(self, sub: Submission, reply: dict) -> None:
        """An agent's request left: its reply stays fetchable by llm.attach for the grace period
        (its agent may be away, or the reply may die with this kernel before it is sent)."""
        if sub.journaled:
            parked = ParkedReply(reply, bool(sub.args["stream"]), time.time())
            self.parked[sub.rid] = parked
            self.service.journal.leave(sub.rid, parked)

    def attach(self, ctx: CallContext, args: dict) -> object:
        """llm.attach: the caller's request `request_id` replies here (and streams what the
        caller has not received, from `received` tokens on)."""
        s = self.service
        if s.codec is None and s.config.num_workers > 0 and not s.unavailable:
            self.waiting.append((ctx, args))  # the catch-up stream needs the tokenizer
            return DEFERRED
        rid = full_request_id(ctx.caller, args["request_id"])
        sub, parked = s.live.get(rid), self.parked.get(rid)
        if sub is not None and sub.journaled:
            sub.reply, sub.streamed = ctx.defer(), args["received"]
            s.flush(sub)
            return DEFERRED
        if parked is None:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no request '{rid}' in flight or finished in the last "
                               f"{self.grace_s:.0f} s")
        reply = ctx.defer()
        if parked.reply["ok"] and parked.stream:
            owed = parked.reply["result"]["token_ids"][args["received"]:]
            if owed and s.codec is not None:
                reply.stream({"request_id": rid, "token_ids": owed, "text": s.codec.decode(owed)})
        if parked.reply["ok"]:
            reply.ok(parked.reply["result"])
        else:
            reply.error(parked.reply["error"]["code"], parked.reply["error"]["message"])
        return DEFERRED

    def answer_waiting(self, error: SyscallError | None = None) -> None:
        """The llm.attach calls that waited for the model: served now, or failed with `error`."""
        attaching, self.waiting = self.waiting, []
        for ctx, args in attaching:
            try:
                if error is not None:
                    raise error
                self.attach(ctx, args)
            except SyscallError as err:
                ctx.defer().error(err.code, err.message)

    def _expire_detached(self) -> None:
        for sub in [s for s in self.service.live.values() if s.is_detached]:
            self.service.cancel_request(sub.rid, f"agent {sub.agent} did not re-attach within {self.grace_s:.0f} s "
                                                 "of the kernel's restart")

    def _expire_replies(self) -> None:
        for rid in self.service.journal.expire(self.grace_s):
            self.parked.pop(rid, None)
