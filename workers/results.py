"""Builders of the wire results a worker returns (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from syscalls.digests import pack_float32
from workers.state import SeqState


def load_result(
    rid: Any, mode: Any, state: SeqState | None, how: str | None, prefilled: int, t_s: float,
    error: dict | None,
) -> dict:
    """LoadResult, plus `how` (prefill|swap|drop|recompute) and `prefilled_tokens` (extras)."""
    return {
        "rid": rid, "mode": mode, "prompt_tokens": len(state.prompt_ids) if state else 0,
        "kv_bytes": state.kv_bytes if state else 0, "t_s": t_s, "error": error,
        "how": how, "prefilled_tokens": prefilled,
    }


def seq_result(state: SeqState, num_generated_before: int, num_steps_before: int) -> dict:
    """SeqResult of a slice. Beam search: new_token_ids is empty until finish, then the output."""
    if state.params.is_beam:
        new_ids = list(state.output_ids or []) if state.is_finished else []
    elif state.is_finished:
        new_ids = list((state.output_ids or [])[num_generated_before:])
    else:
        new_ids = state.seqs[0][num_generated_before:]
    return {
        "rid": state.rid, "new_token_ids": new_ids, "num_steps": state.num_steps - num_steps_before,
        "num_tokens": state.num_tokens if not state.is_finished else len(state.prompt_ids) + len(state.output_ids or []),
        "kv_bytes": 0 if state.is_finished else state.kv_bytes,
        "is_finished": state.is_finished, "finish_reason": state.finish_reason,
        "output_ids": list(state.output_ids) if state.is_finished and state.output_ids is not None else None,
        "output_logprobs": pack_float32(state.token_logprobs) if state.is_finished and state.params.logprobs else None,
        "step_scores": list(state.step_scores) if state.step_scores is not None else None,
        "error": None,
    }


def seq_error(rid: Any, error: dict) -> dict:
    return {
        "rid": rid, "new_token_ids": [], "num_steps": 0, "num_tokens": 0, "kv_bytes": 0,
        "is_finished": False, "finish_reason": None, "output_ids": None, "step_scores": None,
        "error": error,
    }
