"""The launch report: JSON (per agent, per request, summary, config) and a readable table. Pure:
works on a Session-like record and a sched.stats reply, so it is testable on synthetic stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean

REQUEST_FIELDS = ("waiting_s", "queued_s", "turnaround_s", "ttft_s", "preemptions", "num_slices",
                  "output_tokens", "output_sha256", "logprobs_sha256", "state", "arrival", "first_scheduled", "finish", "slices",
                  "recovery_s", "recovery_resume_tokens")


@dataclass(slots=True)
class AgentRun:
    """What the launcher knows about one agent process (no Popen: reports are built from plain data)."""

    name: str
    kind: str
    pid: int
    exit_code: int | None
    started_s: float
    ended_s: float | None
    result: dict = field(default_factory=dict)
    log_tail: str = ""
    peak_rss_bytes: int = 0


def agent_runs(session) -> list[AgentRun]:
    """AgentRun records from a launcher Session."""
    return [AgentRun(a.name, a.spec.kind, a.pid, a.exit_code, a.started_s, a.ended_s, a.result(),
                     a.log_tail() if a.exit_code != 0 else "", session.peak_rss_bytes.get(a.name, 0))
            for a in session.agents]


def request_rows(runs: list[AgentRun], stats: dict, since_s: float) -> list[dict]:
    """This session's requests from sched.stats (rows of these agents arriving after since_s)."""
    names = {r.name for r in runs}
    rows = []
    for r in stats.get("requests", []):
        if r.get("agent") in names and (r.get("arrival") or 0) >= since_s:
            row = {"agent": r["agent"], "request_id": r["rid"], **{k: r.get(k) for k in REQUEST_FIELDS}}
            rows.append(row)
    return sorted(rows, key=lambda r: (r["agent"], _request_number(r["request_id"])))


def _request_number(rid: str) -> tuple[int, str]:
    label = rid.rsplit("/", 1)[-1]
    return (int(label), "") if label.isdigit() else (1 << 30, label)


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return fmean(vals) if vals else None


def agent_row(run: AgentRun, rows: list[dict], origin_s: float) -> dict:
    """AIOS convention: an agent's waiting/turnaround is the mean over its finished requests.
    Also agent-level figures from the session start (origin_s): until its first request was first
    scheduled (agent_waiting_s) and until its process exited (agent_turnaround_s)."""
    done = [r for r in rows if r["agent"] == run.name and r["state"] == "finished"]
    firsts = [r["first_scheduled"] for r in done if r.get("first_scheduled") is not None]
    row = {"name": run.name, "kind": run.kind, "pid": run.pid, "exit_code": run.exit_code,
           "waiting_s": _mean(done, "waiting_s"), "turnaround_s": _mean(done, "turnaround_s"),
           "queued_s": _mean(done, "queued_s"), "ttft_s": _mean(done, "ttft_s"), "requests": len(done),
           "output_tokens": sum(r["output_tokens"] or 0 for r in done),
           "elapsed_s": None if run.ended_s is None else run.ended_s - run.started_s,
           "agent_waiting_s": min(firsts) - origin_s if firsts else None,
           "agent_turnaround_s": None if run.ended_s is None else run.ended_s - origin_s,
           "peak_rss_bytes": run.peak_rss_bytes, "num_lost": num_lost(run, rows)}
    if run.exit_code != 0:
        row["error"] = run.result.get("error") or run.log_tail
    return row


def num_lost(run: AgentRun, rows: list[dict]) -> int:
    """Requests the agent saw finish whose kernel record is missing or has a different output."""
    kernel = {r["request_id"]: r for r in rows if r["state"] == "finished"}
    mine = run.result.get("requests") or []
    return sum(1 for m in mine if kernel.get(m["request_id"], {}).get("output_sha256") != m["output_sha256"])


def summary(agents: list[dict], rows: list[dict], started_s: float, ended_s: float) -> dict:
    """Means over agents (each agent's figure is itself a mean over its requests, as in AIOS)."""
    done = [r for r in rows if r["state"] == "finished"]
    tokens = sum(r["output_tokens"] or 0 for r in done)
    makespan = ended_s - started_s
    arrivals, finishes = [r["arrival"] for r in done], [r["finish"] for r in done]
    return {"mean_waiting_s": _mean(agents, "waiting_s"), "mean_turnaround_s": _mean(agents, "turnaround_s"),
            "mean_request_waiting_s": _mean(done, "waiting_s"), "mean_request_turnaround_s": _mean(done, "turnaround_s"),
            "makespan_s": makespan, "makespan_definition": "first agent process start to last agent process exit",
            "llm_span_s": (max(finishes) - min(arrivals)) if done else 0.0,
            "tokens_per_s": tokens / makespan if makespan > 0 else 0.0, "output_tokens": tokens,
            "num_requests": len(rows), "num_failed": len(rows) - len(done),
            "num_failed_agents": sum(1 for a in agents if a["exit_code"] != 0),
            "num_lost": sum(a["num_lost"] for a in agents),
            "max_agent_rss_bytes": max((a["peak_rss_bytes"] for a in agents), default=0)}


def build_report(runs: list[AgentRun], stats: dict, started_s: float, ended_s: float, config: dict,
                 kernel_pid: int) -> dict:
    """The launch JSON (contract in README: kernel_pid, worker_pids, agents, requests, summary, config)."""
    rows = request_rows(runs, stats, started_s)
    agents = [agent_row(r, rows, started_s) for r in runs]
    return {"kernel_pid": kernel_pid, "worker_pids": [w.get("pid") for w in stats.get("workers", [])],
            "clock_origin_s": started_s, "policy": stats.get("policy"), "sched_config": stats.get("config"),
            "overhead": stats.get("overhead"), "config": config, "agents": agents, "requests": rows,
            "summary": summary(agents, rows, started_s, ended_s)}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def by_kind(agents: list[dict]) -> dict[str, dict]:
    """Per agent kind: agents, failed agents, requests, tokens, and the means of the agents' figures."""
    kinds: dict[str, list[dict]] = {}
    for a in agents:
        kinds.setdefault(a["kind"], []).append(a)
    return {kind: {"agents": len(rows), "failed_agents": sum(1 for a in rows if a["exit_code"] != 0),
                   "requests": sum(a["requests"] for a in rows), "output_tokens": sum(a["output_tokens"] for a in rows),
                   "waiting_s": _mean(rows, "waiting_s"), "turnaround_s": _mean(rows, "turnaround_s"),
                   "elapsed_s": _mean(rows, "elapsed_s")}
            for kind, rows in sorted(kinds.items())}


def format_table(report: dict) -> str:
    """Per-agent table plus a summary line."""
    head = f"{'agent':<16} {'pid':>7} {'exit':>4} {'reqs':>4} {'tokens':>6} {'waiting_s':>9} {'turnaround_s':>12} {'elapsed_s':>9}"
    lines = [head, "-" * len(head)]
    for a in report["agents"]:
        lines.append(f"{a['name'][:16]:<16} {a['pid']:>7} {_code(a['exit_code']):>4} {a['requests']:>4} "
                     f"{a['output_tokens']:>6} {_fmt(a['waiting_s']):>9} {_fmt(a['turnaround_s']):>12} "
                     f"{_fmt(a['elapsed_s'], 2):>9}")
    return "\n".join([*lines, *_footer(report, len(head))])


def format_kinds(report: dict) -> str:
    """One line per agent kind (for thousands of agents) plus the summary line."""
    head = f"{'kind':<12} {'agents':>7} {'failed':>6} {'reqs':>6} {'tokens':>7} {'waiting_s':>9} {'turnaround_s':>12} {'elapsed_s':>9}"
    lines = [head, "-" * len(head)]
    for kind, k in by_kind(report["agents"]).items():
        lines.append(f"{kind[:12]:<12} {k['agents']:>7} {k['failed_agents']:>6} {k['requests']:>6} {k['output_tokens']:>7} "
                     f"{_fmt(k['waiting_s']):>9} {_fmt(k['turnaround_s']):>12} {_fmt(k['elapsed_s'], 2):>9}")
    return "\n".join([*lines, *_footer(report, len(head), max_failed=10)])


def _footer(report: dict, width: int, max_failed: int | None = None) -> list[str]:
    s = report["summary"]
    lines = ["-" * width]
    lines.append(f"makespan {s['makespan_s']:.2f} s (first agent start -> last agent exit) | "
                 f"{s['num_requests']} requests, {s['num_failed']} failed, {s['num_lost']} lost | "
                 f"{s['output_tokens']} tokens, {s['tokens_per_s']:.0f} tok/s | mean waiting "
                 f"{_fmt(s['mean_waiting_s'])} s, mean turnaround {_fmt(s['mean_turnaround_s'])} s | "
                 f"agent RSS <= {s['max_agent_rss_bytes'] / 2**20:.1f} MiB")
    failed = [a for a in report["agents"] if a["exit_code"] != 0]
    for a in failed[:max_failed]:
        lines.append(f"FAILED {a['name']} (exit {_code(a['exit_code'])}): {str(a.get('error', '')).strip()[-300:]}")
    if max_failed is not None and len(failed) > max_failed:
        lines.append(f"... and {len(failed) - max_failed} more failed agents (see the JSON and STATE/agents/*.log)")
    return lines


def _code(code: int | None) -> str:
    return "-" if code is None else str(code)
