"""Pure scheduling core (stdlib only): requests in, plans out, plan results back."""

from __future__ import annotations

from kernel.scheduler.config import SchedConfig
from kernel.scheduler.core import Scheduler
from kernel.scheduler.plan import (
    EvictResult,
    EvictSpec,
    LoadResult,
    LoadSpec,
    Plan,
    PlanResult,
    SeqResult,
)
from kernel.scheduler.policies import POLICIES, Policy, make_policy
from kernel.scheduler.request import (
    CancelEffect,
    Completion,
    DuplicateRequest,
    PlanMismatch,
    RequestTooLarge,
    SchedulerError,
    SeqRequest,
    SeqState,
    WorkerLoss,
)
from kernel.scheduler.timeline import SliceRecord, Timeline


def make_scheduler(config: SchedConfig, kv_bytes_per_token: int) -> Scheduler:
    """A Scheduler with the policy named by config.policy."""
    return Scheduler(config, make_policy(config.policy, config), kv_bytes_per_token)


__all__ = [
    "POLICIES",
    "CancelEffect",
    "Completion",
    "DuplicateRequest",
    "EvictResult",
    "EvictSpec",
    "LoadResult",
    "LoadSpec",
    "Plan",
    "PlanMismatch",
    "PlanResult",
    "Policy",
    "RequestTooLarge",
    "SchedConfig",
    "Scheduler",
    "SchedulerError",
    "SeqRequest",
    "SeqResult",
    "SeqState",
    "SliceRecord",
    "Timeline",
    "WorkerLoss",
    "make_policy",
    "make_scheduler",
]
