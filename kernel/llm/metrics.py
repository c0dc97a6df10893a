"""Requests that left the scheduler, and the per-agent figures of sched.stats (AIOS: an agent's
figure is the mean over its finished requests). Pure."""

from __future__ import annotations

from collections import deque

from kernel.scheduler.request import SeqRequest
from kernel.scheduler.timeline import METRICS, Timeline
from syscalls.digests import bytes_sha256, output_sha256

MAX_ROWS = 100_000  # rows of requests that left the scheduler kept for sched.stats (the newest)


class History:
    """Rows (timeline dicts) of the newest MAX_ROWS finished, failed and cancelled requests, in
    leaving order; per agent, running sums over all its finished requests (for the means) and
    totals, so that memory and sched.stats stay bounded whatever the number of requests."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.records: deque[dict] = deque(maxlen=max_rows)
        self._sums: dict[str, dict[str, list[float]]] = {}  # agent -> metric -> [sum, count]
        self._done: dict[str, list[int]] = {}  # agent -> [finished requests, their output tokens]
        self.totals = {"finished": 0, "failed": 0, "cancelled": 0, "output_tokens": 0}

    def add(self, row: dict, timeline: Timeline) -> None:
        self.records.append(row)
        self.totals[row["state"]] = self.totals.get(row["state"], 0) + 1
        if row["state"] != "finished":
            return
        self.totals["output_tokens"] += row["output_tokens"]
        sums = self._sums.setdefault(timeline.agent, {})
        for name in METRICS:
            value = getattr(timeline, name)
            if value is not None:
                acc = sums.setdefault(name, [0.0, 0])
                acc[0] += float(value)
                acc[1] += 1
        done = self._done.setdefault(timeline.agent, [0, 0])
        done[0] += 1
        done[1] += row["output_tokens"]

    def to_wire(self, agent: str | None, active: list[dict], with_rows: bool = True) -> dict:
        rows = [r for r in [*self.records, *active] if agent is None or r.get("agent") == agent] if with_rows else []
        agents = {}
        for name, (count, tokens) in self._done.items():
            if agent is None or name == agent:
                means = {f"mean_{k}": total / n for k, (total, n) in self._sums[name].items()}
                agents[name] = {**means, "num_requests": count, "output_tokens": tokens}
        return {"requests": rows, "agents": agents, "totals": dict(self.totals)}


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
