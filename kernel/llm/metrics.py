"""Requests that left the scheduler, and the per-agent figures of sched.stats (AIOS: an agent's
figure is the mean over its finished requests). Pure."""

from __future__ import annotations

from kernel.scheduler.timeline import Timeline, aggregate_by_agent


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
