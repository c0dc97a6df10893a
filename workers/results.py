"""Builders of the typed results a worker returns, from the one typed definition of each
(syscalls/worker_messages.py, shared with the kernel)."""

from __future__ import annotations

from typing import Any

from syscalls.digests import pack_float32
from syscalls.worker_messages import EvictResult, LoadResult, SeqResult
from workers.state import SeqState


def evict_result(rid: Any, snapshot_bytes: int, t_s: float, error: dict | None) -> EvictResult:
    return EvictResult(rid, snapshot_bytes=snapshot_bytes, t_s=t_s, error=error)


def load_result(
    rid: Any, mode: Any, state: SeqState | None, how: str | None, prefilled: int, t_s: float,
    error: dict | None,
) -> LoadResult:
    """LoadResult with `how` (prefill|swap|drop|recompute) and `prefilled_tokens`."""
    return LoadResult(
        rid, mode, prompt_tokens=len(state.prompt_ids) if state else 0, kv_bytes=state.kv_bytes if state else 0,
        t_s=t_s, error=error, how=how, prefilled_tokens=prefilled,
    )


def seq_result(state: SeqState, num_generated_before: int, num_steps_before: int) -> SeqResult:
    """SeqResult of a slice. Beam search: new_token_ids is empty until finish, then the output."""
    if state.params.is_beam:
        new_ids = list(state.output_ids or []) if state.is_finished else []
    elif state.is_finished:
        new_ids = list((state.output_ids or [])[num_generated_before:])
    else:
        new_ids = state.seqs[0][num_generated_before:]
    done = state.is_finished
    return SeqResult(
        rid=state.rid, new_token_ids=new_ids, num_steps=state.num_steps - num_steps_before,
        num_tokens=state.num_tokens if not done else len(state.prompt_ids) + len(state.output_ids or []),
        kv_bytes=0 if done else state.kv_bytes, is_finished=done, finish_reason=state.finish_reason,
        output_ids=list(state.output_ids) if done and state.output_ids is not None else None,
        output_logprobs=pack_float32(state.token_logprobs) if done and state.params.logprobs else None,
        step_scores=list(state.step_scores) if state.step_scores is not None else None,
    )


def seq_error(rid: Any, error: dict) -> SeqResult:
    return SeqResult(rid, error=error)
