"""Scheduling policies, one class per file; `make_policy` is the registry."""

from __future__ import annotations

from kernel.scheduler.config import SchedConfig
from kernel.scheduler.policies.base import Policy
from kernel.scheduler.policies.fair import FairPolicy
from kernel.scheduler.policies.fifo import FifoPolicy
from kernel.scheduler.policies.las import LasPolicy
from kernel.scheduler.policies.mlfq import MlfqPolicy
from kernel.scheduler.policies.plas import PlasPolicy
from kernel.scheduler.policies.priority import PriorityPolicy
from kernel.scheduler.policies.rr import RoundRobinPolicy
from kernel.scheduler.policies.srpt import SrptPolicy

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        FifoPolicy, RoundRobinPolicy, MlfqPolicy, FairPolicy, PriorityPolicy, SrptPolicy, LasPolicy, PlasPolicy,
    )
}


def make_policy(name: str, config: SchedConfig) -> Policy:
    """The policy called `name`; ValueError names the known ones."""
    try:
        return POLICIES[name](config)
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {sorted(POLICIES)}") from None


__all__ = ["POLICIES", "Policy", "make_policy"]
