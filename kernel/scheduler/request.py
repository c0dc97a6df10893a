"""The scheduler's view of one generation request, and what leaves the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from kernel.scheduler.timeline import Timeline

WorkerId = int


class SeqState(str, Enum):
    WAITING = "waiting"  # never loaded on a worker
    READY = "ready"  # runnable: resident on a worker, or its snapshot is in LMDB
    RUNNING = "running"  # in an outstanding plan (being evicted, loaded or decoded)
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (SeqState.FINISHED, SeqState.CANCELLED, SeqState.FAILED)


@dataclass(slots=True)
class SeqRequest:
    # -- set by the kernel at submit
    rid: str  # globally unique, e.g. "math-0/3"
    agent: str
    arrival_s: float
    prompt_len: int
    max_new_tokens: int
    num_beams: int = 1
    priority: int = 0
    expected_tokens: int | None = None  # the agent's length hint (srpt); None: max_new_tokens
    program_id: str | None = None  # the agent's label grouping its calls into one program (plas)
    kv_block_tokens: int = 1  # the workers' KV block size (set by the Scheduler on submit)
    # -- owned by the Scheduler (the kernel reads, never writes)
    num_generated: int = 0
    state: SeqState = SeqState.WAITING
    residency: WorkerId | None = None  # worker holding its KV (READY, or RUNNING there)
    has_snapshot: bool = False  # a live LMDB snapshot (READY and not resident)
    is_snapshot_kv: bool = False  # the snapshot holds KV ("swap") or not ("drop")
    kv_bytes: int = 0  # last resident KV size the worker reported
    plan_id: int | None = None  # the outstanding plan it is in (RUNNING only)
    is_cancel_requested: bool = False
    num_recoveries: int = 0  # times its worker died and it went back to replay
    checkpoint: int | None = None  # number of its latest confirmed checkpoint (kept in LMDB)
    checkpoint_tokens: int = 0  # num_generated at that checkpoint
    num_checkpoints: int = 0  # checkpoints asked for so far (numbers them)
    is_restoring_checkpoint: bool = False  # READY after a worker death: restore from `checkpoint`
    finish_reason: str | None = None
    output_ids: list[int] | None = None
    output_logprobs: bytes | None = None
    error: dict | None = None  # {code, message} when FAILED
    timeline: Timeline = field(init=False)

    def __post_init__(self) -> None:
        self.timeline = Timeline(self.rid, self.agent, self.arrival_s)

    @property
    def num_tokens(self) -> int:
        """Context length: prompt plus generated tokens."""
        return self.prompt_len + self.num_generated

    @property
    def num_remaining(self) -> int:
        return max(0, self.max_new_tokens - self.num_generated)

    @property
    def program(self) -> tuple[str, str | None]:
        """The program this call belongs to: (agent, program_id); all of an agent's calls
        without a program_id form one program. Agent first, so agents' labels never collide."""
        return (self.agent, self.program_id)

    @property
    def is_runnable(self) -> bool:
        return self.state in (SeqState.WAITING, SeqState.READY)


@dataclass(slots=True)
class Completion:
    """A request that left the scheduler (finished, cancelled or failed).

    The kernel replies to the agent from `request` (state, finish_reason, output_ids, error,
    timeline) and, when `needs_free`, sends `free` for the rid to `free_worker`, or to any live
    worker when it is None (only LMDB entries remain).
    """

    request: SeqRequest
    needs_free: bool = False
    free_worker: WorkerId | None = None
    checkpoint: int | None = None  # its checkpoint, to delete from LMDB


@dataclass(slots=True)
class WorkerLoss:
    """What remove_worker did: cancel-pending requests left (completions); the others went
    back to replay (recovered: rid -> the number of generated tokens it resumes from, 0 for the
    prompt, or its checkpoint's)."""

    completions: list[Completion] = field(default_factory=list)
    recovered: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class CancelEffect:
    """What cancel() did: is_deferred means the request is in an outstanding plan and its
    Completion (state CANCELLED) comes out of on_plan_done/remove_worker."""

    is_found: bool
    is_deferred: bool = False
    completion: Completion | None = None


class SchedulerError(ValueError):
    """A request the scheduler refuses; `code` is an aiosim error code for the reply."""

    code = "INVALID_ARGUMENT"


class RequestTooLarge(SchedulerError):
    """(prompt_len + max_new_tokens) * num_beams * kv_bytes_per_token exceeds one worker's
    KV budget: it could never run, so it is rejected at submit instead of deadlocking."""

    code = "CONTEXT_TOO_LONG"


class DuplicateRequest(SchedulerError):
    code = "ALREADY_EXISTS"


class PlanMismatch(SchedulerError):
    """A plan_done that does not answer the worker's outstanding plan."""

    code = "INTERNAL"
