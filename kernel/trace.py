"""sched.stats timelines -> a Chrome trace-event JSON (pure), for Perfetto and chrome://tracing.

One process per agent, one track (thread) per lane of its requests (a lane holds requests whose
spans do not overlap, so an agent with requests in flight one at a time has one track); one
process "workers" with a track per worker, a slice per decode plan (the requests batched in it
in its args). Preemptions are instant events on the request's track, swaps to and from LMDB
instant events on the worker's track (their duration in args). Times are microseconds from the
earliest arrival. Format: the Trace Event Format's JSON object form ("traceEvents").
"""

from __future__ import annotations

import json
from pathlib import Path

WORKERS_PID = 1  # agents are pids 2, 3, ... in name order


def build_trace(stats: dict) -> dict:
    requests = [r for r in stats.get("requests") or [] if r.get("arrival") is not None]
    origin = min((r["arrival"] for r in requests), default=0.0)
    events: list[dict] = [_meta("process_name", WORKERS_PID, 0, "workers"), _meta("process_sort_index", WORKERS_PID, 0, 0)]
    events += _worker_events(requests, origin)
    for pid, agent in enumerate(sorted({r["agent"] for r in requests}), start=WORKERS_PID + 1):
        events.append(_meta("process_name", pid, 0, f"agent {agent}"))
        events += _agent_events([r for r in requests if r["agent"] == agent], pid, origin)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"policy": stats.get("policy"), "config": stats.get("config")}}


def write_trace(stats: dict, path: str | Path) -> int:
    """Write the trace JSON; returns the number of events."""
    trace = build_trace(stats)
    Path(path).write_text(json.dumps(trace, separators=(",", ":")))
    return len(trace["traceEvents"])


def _us(t: float, origin: float) -> float:
    return round((t - origin) * 1e6, 3)


def _meta(name: str, pid: int, tid: int, value: object) -> dict:
    key = "sort_index" if name.endswith("sort_index") else "name"
    return {"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {key: value}}


def _lanes(spans: list[tuple[float, float]]) -> list[int]:
    """A lane per span such that spans in one lane do not overlap (greedy, by start)."""
    ends: list[float] = []
    lanes = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda k: spans[k]):
        start, end = spans[i]
        lane = next((n for n, last in enumerate(ends) if last <= start), len(ends))
        if lane < len(ends):
            ends[lane] = end
        else:
            ends.append(end)
        lanes[i] = lane
    return lanes


def _agent_events(requests: list[dict], pid: int, origin: float) -> list[dict]:
    spans = [(r["slices"][0][1], r["slices"][-1][2]) if r["slices"] else (r["arrival"], r["arrival"]) for r in requests]
    lanes = _lanes(spans)
    events = [_meta("thread_name", pid, lane + 1, f"requests {lane + 1}") for lane in sorted(set(lanes))]
    for r, lane in zip(requests, lanes, strict=True):
        tid = lane + 1
        for wid, start, end, num_tokens in r["slices"]:
            events.append({"name": r["rid"], "cat": "slice", "ph": "X", "ts": _us(start, origin), "dur": _us(end, start),
                           "pid": pid, "tid": tid, "args": {"worker": wid, "tokens": num_tokens, "state": r["state"]}})
        events += [{"name": "preempted", "cat": "preemption", "ph": "i", "s": "t", "ts": _us(t, origin), "pid": pid,
                    "tid": tid, "args": {"request": r["rid"]}} for t in r.get("preemption_s") or ()]
    return events


def _worker_events(requests: list[dict], origin: float) -> list[dict]:
    plans: dict[tuple[int, float, float], list[tuple[str, int]]] = {}
    for r in requests:
        for wid, start, end, num_tokens in r["slices"]:
            plans.setdefault((wid, start, end), []).append((r["rid"], num_tokens))
    by_worker: dict[int, list[tuple[float, float]]] = {}
    for wid, start, end in plans:
        by_worker.setdefault(wid, []).append((start, end))
    events = []
    for wid, spans in sorted(by_worker.items()):
        lanes = dict(zip(spans, _lanes(spans), strict=True))
        events += [_meta("thread_name", WORKERS_PID, _worker_tid(wid, lane), f"worker {wid}" + (f" ({lane + 1})" if lane else ""))
                   for lane in sorted(set(lanes.values()))]
        for (start, end), lane in lanes.items():
            batch = plans[(wid, start, end)]
            events.append({"name": f"batch of {len(batch)}", "cat": "plan", "ph": "X", "ts": _us(start, origin),
                           "dur": _us(end, start), "pid": WORKERS_PID, "tid": _worker_tid(wid, lane),
                           "args": {"requests": [rid for rid, _ in batch], "tokens": sum(n for _, n in batch)}})
    for r in requests:
        for wid, direction, end, duration in r.get("swaps") or ():
            events.append({"name": f"swap {direction}", "cat": "swap", "ph": "i", "s": "t", "ts": _us(end, origin),
                           "pid": WORKERS_PID, "tid": _worker_tid(wid, 0),
                           "args": {"request": r["rid"], "duration_ms": round(duration * 1e3, 3)}})
    return events


def _worker_tid(wid: int, lane: int) -> int:
    return (wid + 1) * 100 + lane
