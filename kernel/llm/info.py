"""llm.info: what a client needs to know of the served model, from the first ready worker's
ready message (every worker loads the same model). Pure over the service's state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syscalls.errors import ErrorCode, SyscallError

if TYPE_CHECKING:
    from kernel.llm.service import LLMService


def model_info(llm: LLMService) -> dict:
    """The model description, or UNAVAILABLE while no worker is ready (or with --workers 0)."""
    ready = [w for w in llm.pool.workers.values() if w.is_ready]
    if not ready:
        why = llm.unavailable or "no worker is ready yet (the model is loading); retry shortly"
        raise SyscallError(ErrorCode.UNAVAILABLE, why if llm.config.num_workers else "this kernel runs no workers")
    m = ready[0].model
    fingerprint = m.get("fingerprint") or {}
    pool = m.get("kv_pool")
    return {
        "model_id": m.get("model_id"),
        "vocab_size": m.get("vocab_size"),
        "context_window": m.get("max_context"),
        "eos_token_id": m.get("eos_token_id"),
        "engine": m.get("engine"),
        "batch_invariant": bool(m.get("batch_invariant")),
        "device": fingerprint.get("device", "cpu"),
        "dtype": fingerprint.get("dtype"),
        "num_workers": llm.config.num_workers,
        "max_batch": llm.config.max_batch,
        "kv_capacity": None if pool is None else {k: pool.get(k) for k in ("pool_bytes", "num_blocks", "block_size", "bytes_per_token")},
    }
