"""context_policy 'summarize': an internal LLM request condenses the oldest part of an over-long
prompt; when it finishes, the original request continues with summary + recent tokens. The
internal request is scheduled like any other (same agent, rid '<rid>#summary')."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel.llm.prompt import SUMMARY_INSTRUCTION, split_for_summary
from syscalls.errors import SyscallError

if TYPE_CHECKING:
    from kernel.llm.requests import Submission
    from kernel.llm.service import LLMService


def summary_submission(service: LLMService, sub: Submission, ids: list[int]) -> Submission:
    from kernel.llm.requests import Submission

    codec = service.codec
    max_context = codec.window.max_context
    old, recent, num_summary = split_for_summary(ids, max_context, sub.args["max_new_tokens"])
    instruction = codec.encode_text(SUMMARY_INSTRUCTION)
    room = max_context - num_summary - len(instruction)
    prompt_ids = instruction + old[-room:]
    args = {**sub.args, "max_new_tokens": num_summary, "temperature": 0.0, "num_beams": 1, "stop": None,
            "stop_token_ids": None, "stream": False, "expected_tokens": None}

    def on_done(result: dict | SyscallError) -> None:
        if sub.rid not in service.live:
            return  # the original was cancelled meanwhile
        if isinstance(result, SyscallError):
            service._fail(sub.rid, result.code, f"summarize failed: {result.message}")
            return
        service._enqueue(sub, result["token_ids"] + recent)

    internal = Submission(f"{sub.rid}#summary", sub.agent, args, sub.arrival_s, None, on_done)
    internal.prompt_ids = prompt_ids
    return internal
