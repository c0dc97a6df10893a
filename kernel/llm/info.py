"""What the LLM service shows of itself: llm.info (the served model, from the first ready
worker's ready message: every worker loads the same model) and sched.stats (configuration,
workers, KV use, the journal, request timelines). Pure over the service's state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel.llm.metrics import active_row
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


def sched_stats(llm: LLMService, agent: str | None, with_rows: bool = True) -> dict:
    """sched.stats (docs/protocol.md section 4); with_rows=False leaves out the timelines."""
    core = llm.core
    base = {"policy": llm.config.scheduler, "config": sched_config(llm),
            "workers": [w.to_wire() for w in llm.pool.workers.values()],
            "overhead": llm.overhead.to_wire() if core else None,
            "journal": llm.journal.counts() if llm.journal is not None else None, "kv": kv_use(llm)}
    reqs = core.requests() if core else []
    active = []
    if with_rows and core is not None:
        ranked = sorted(reqs, key=core.policy.rank_key)
        active = [active_row(r, rank, core.worker_of(r)) for rank, r in enumerate(ranked) if agent in (None, r.agent)]
    wire = llm.history.to_wire(agent, active, with_rows)
    wire["totals"]["active"] = len(reqs)
    return {**base, **wire}


def kv_use(llm: LLMService) -> list[dict]:
    """KV bytes reserved on each worker against its budget (the scheduler's ledger)."""
    if llm.core is None:
        return []
    budget = llm.core.config.kv_budget_bytes
    return [{"worker_id": w, "used_bytes": llm.core.resident_bytes(w), "budget_bytes": budget} for w in llm.core.workers]


def sched_config(llm: LLMService) -> dict:
    c = llm.config
    sched = llm.core.config if llm.core is not None else None
    return {"quantum": c.quantum, "max_batch": c.max_batch, "preempt": c.preempt, "num_workers": c.num_workers,
            "model": c.model, "engine": c.engine, "kv_pool_bytes": c.kv_pool_bytes,
            "kv_budget_bytes": sched.kv_budget_bytes if sched else None,
            "kv_block_tokens": sched.kv_block_tokens if sched else None}
