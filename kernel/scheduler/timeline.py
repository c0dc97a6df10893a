"""Per-request timelines and the metrics derived from them (AIOS definitions).

All times are seconds on the kernel's clock (CLOCK_MONOTONIC, which workers share).
Slice start/end are the plan's t_start/t_end as reported by the worker; first_scheduled
and preemption times are the kernel's `now` at dispatch; finish is the t_end of the plan
that finished the request, or `now` for cancel/failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class SliceRecord:
    worker_id: int
    start_s: float
    end_s: float
    num_tokens: int

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass(slots=True)
class Timeline:
    rid: str
    agent: str
    arrival_s: float
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    finish_s: float | None = None
    num_output_tokens: int = 0
    slices: list[SliceRecord] = field(default_factory=list)
    preemption_s: list[float] = field(default_factory=list)
    snapshot_durations_s: list[float] = field(default_factory=list)
    restore_durations_s: list[float] = field(default_factory=list)
    swaps: list[list] = field(default_factory=list)  # [worker_id, 'out'|'in', end_s, duration_s] per snapshot/restore
    recovery_s: list[float] = field(default_factory=list)  # its worker died: replayed from ...
    recovery_resume_tokens: list[int] = field(default_factory=list)  # ... this many tokens (checkpoint or 0)

    def record_recovery(self, now: float, resume_tokens: int) -> None:
        """Its worker died: it resumes from `resume_tokens` (its checkpoint's, or 0 for the
        prompt); the tokens past that are made again by the replay (and checked)."""
        self.recovery_s.append(now)
        self.recovery_resume_tokens.append(resume_tokens)
        self.num_output_tokens = resume_tokens

    def record_swap(self, worker_id: int, direction: str, end_s: float, duration_s: float) -> None:
        """A snapshot to LMDB ('out') or a restore from it ('in') that ended at end_s."""
        (self.snapshot_durations_s if direction == "out" else self.restore_durations_s).append(duration_s)
        self.swaps.append([worker_id, direction, end_s, duration_s])

    def record_slice(self, worker_id: int, start_s: float, end_s: float, num_tokens: int) -> None:
        self.slices.append(SliceRecord(worker_id, start_s, end_s, num_tokens))
        self.num_output_tokens += num_tokens
        if num_tokens > 0 and self.first_token_s is None:
            self.first_token_s = end_s

    @property
    def waiting_s(self) -> float | None:
        """AIOS waiting time: arrival to first scheduled."""
        return _diff(self.first_scheduled_s, self.arrival_s)

    @property
    def turnaround_s(self) -> float | None:
        return _diff(self.finish_s, self.arrival_s)

    @property
    def ttft_s(self) -> float | None:
        return _diff(self.first_token_s, self.arrival_s)

    @property
    def queued_s(self) -> float | None:
        """All time runnable but not running: turnaround minus the time inside its slices."""
        turnaround = self.turnaround_s
        if turnaround is None:
            return None
        return max(0.0, turnaround - sum(s.duration_s for s in self.slices))

    @property
    def preemptions(self) -> int:
        return len(self.preemption_s)

    @property
    def num_slices(self) -> int:
        return len(self.slices)

    def timing(self) -> dict:
        """The `timing` map of the llm.generate result."""
        return {
            "arrival": self.arrival_s,
            "first_scheduled": self.first_scheduled_s,
            "first_token": self.first_token_s,
            "finish": self.finish_s,
            "waiting_s": self.waiting_s,
            "queued_s": self.queued_s,
            "turnaround_s": self.turnaround_s,
            "ttft_s": self.ttft_s,
            "preemptions": self.preemptions,
            "num_slices": self.num_slices,
        }

    def to_dict(self) -> dict:
        """JSON-ready: the timing map plus the raw records."""
        out = self.timing()
        out.update(
            rid=self.rid,
            agent=self.agent,
            num_output_tokens=self.num_output_tokens,
            slices=[[s.worker_id, s.start_s, s.end_s, s.num_tokens] for s in self.slices],
            preemption_s=list(self.preemption_s),
            snapshot_durations_s=list(self.snapshot_durations_s),
            restore_durations_s=list(self.restore_durations_s),
            swaps=[list(swap) for swap in self.swaps],
            recovery_s=list(self.recovery_s),
            recovery_resume_tokens=list(self.recovery_resume_tokens),
        )
        return out


METRICS = ("waiting_s", "queued_s", "turnaround_s", "ttft_s", "preemptions", "num_slices")


def _diff(end: float | None, start: float) -> float | None:
    return None if end is None else end - start
