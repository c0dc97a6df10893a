"""Scheduler configuration (owned by the kernel, read-only for the scheduler)."""

from __future__ import annotations

from dataclasses import dataclass, field

PREEMPT_MODES = ("swap", "recompute")


@dataclass(slots=True)
class SchedConfig:
    """Knobs of the scheduler core and its policies.

    quantum: decode steps per slice for rr, fair and priority; the level-0 quantum of mlfq
    (level l gets quantum * 2**l). fifo_slice_steps: steps a non-preemptive fifo slice runs
    before returning to the kernel. kv_budget_bytes: resident KV allowed per worker
    (None = unlimited; the kernel sets it to the workers' KV pool). kv_block_tokens: the pool's
    block size (a row holds whole blocks). preempt: how memory pressure evicts an idle resident request:
    "swap" (snapshot with KV) or "recompute" (snapshot without KV, re-prefilled on restore).
    checkpoint_every: a request that has decoded this many steps since its last durable state
    is checkpointed (snapshot with KV, kept resident) at the end of its slice, so a worker's
    death costs it at most that many steps of replay. priority_aging_s: what one priority level
    is worth in seconds of waiting (priority ranks by arrival + priority * priority_aging_s).
    plas_forget_s: plas forgets a program that has had no live call for this long.
    lookahead: a worker may be sent its next plan while it runs one, where that is exactly the
    plan the policy would choose after it (Policy.lookahead; see Scheduler.next_plan; a
    continuation that stops being that is revoked: Scheduler.revocations), so the worker
    does not wait for the kernel between slices.
    """

    policy: str = "rr"
    quantum: int = 8
    max_batch: int = 8
    kv_budget_bytes: int | None = None
    kv_block_tokens: int = 1
    preempt: str = "swap"
    fifo_slice_steps: int = 16
    checkpoint_every: int = 0  # decode steps between a running request's checkpoints (0: none)
    mlfq_levels: int = 3
    mlfq_boost_s: float = 1.0
    fair_weights: dict[str, float] = field(default_factory=dict)
    priority_aging_s: float = 1.0
    plas_forget_s: float = 60.0
    lookahead: bool = True

    def __post_init__(self) -> None:
        for name in ("quantum", "max_batch", "fifo_slice_steps", "mlfq_levels", "kv_block_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"SchedConfig.{name} must be >= 1")
        if self.preempt not in PREEMPT_MODES:
            raise ValueError(f"SchedConfig.preempt must be one of {PREEMPT_MODES}")
        if self.checkpoint_every < 0:
            raise ValueError("SchedConfig.checkpoint_every must be >= 0")
        if self.kv_budget_bytes is not None and self.kv_budget_bytes < 0:
            raise ValueError("SchedConfig.kv_budget_bytes must be >= 0 or None")
        for name in ("mlfq_boost_s", "priority_aging_s", "plas_forget_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SchedConfig.{name} must be > 0")
        if any(w <= 0 for w in self.fair_weights.values()):
            raise ValueError("SchedConfig.fair_weights must be > 0")

    @property
    def evict_mode(self) -> str:
        """The `plan` evict mode that config.preempt maps to."""
        return "swap" if self.preempt == "swap" else "drop"

    def fair_weight(self, agent: str) -> float:
        return self.fair_weights.get(agent, 1.0)
