"""Requests that left the scheduler, and the per-agent figures of sched.stats (AIOS: an agent's
figure is the mean over its finished requests). Pure."""

from __future__ import annotations

from kernel.scheduler.request import SeqRequest
from kernel.scheduler.timeline import Timeline, aggregate_by_agent
from syscalls.digests import bytes_sha256, output_sha256


class History:
    """Rows (timeline dicts) of finished, failed and cancelled requests, in leaving order; the
    Timelines of the finished ones are kept for the per-agent means."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self._finished: list[tuple[Timeline, int]] = []  # (timeline, output tokens)

    def add(self, row: dict, timeline: Timeline) -> None:
        self.records.append(row)
        if row["state"] == "finished":
            self._finished.append((timeline, row["output_tokens"]))

    def to_wire(self, agent: str | None, active: list[dict]) -> dict:
        rows = [r for r in [*self.records, *active] if agent is None or r.get("agent") == agent]
        done = [(tl, n) for tl, n in self._finished if agent is None or tl.agent == agent]
        agents = {name: {f"mean_{k}": v for k, v in means.items()}
                  for name, means in aggregate_by_agent(tl for tl, _ in done).items()}
        for tl, n in done:
            entry = agents[tl.agent]
            entry["num_requests"] = entry.get("num_requests", 0) + 1
            entry["output_tokens"] = entry.get("output_tokens", 0) + n
        return {"requests": rows, "agents": agents}


def record_of(req: SeqRequest) -> dict:
    """The sched.stats row of a request that left the scheduler."""
    row = req.timeline.to_dict()
    ids = list(req.output_ids or [])
    row.update(state=req.state.value, output_tokens=len(ids), output_sha256=output_sha256(ids),
               logprobs_sha256=None if req.output_logprobs is None else bytes_sha256(req.output_logprobs),
               prompt_tokens=req.prompt_len, finish_reason=req.finish_reason, error=req.error)
    return row


def active_row(req: SeqRequest, rank: int, worker_id: int | None) -> dict:
    """The sched.stats row of a live request; `rank`: its place in the policy's order (0 runs first)."""
    row = req.timeline.to_dict()
    row.update(state="cancelling" if req.is_cancel_requested else req.state.value, output_tokens=req.num_generated,
               rank=rank, worker_id=worker_id, max_new_tokens=req.max_new_tokens)
    return row
