"""Table-5 aggregation: per mode and agent, mean and std over trials; speedup; consistency (the
share of requests whose output equals the agent's solo run). Pure: works on launch reports."""

from __future__ import annotations

from statistics import fmean, stdev

AGENT_METRICS = ("waiting_s", "turnaround_s", "agent_waiting_s", "agent_turnaround_s")


def mean_std(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": fmean(vals), "std": stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def mode_stats(reports: list[dict]) -> dict:
    """Per agent mean/std of each metric over the trials' reports, plus makespan and tokens/s."""
    names = [a["name"] for a in reports[0]["agents"]] if reports else []
    agents = {}
    for name in names:
        rows = [next(a for a in r["agents"] if a["name"] == name) for r in reports]
        agents[name] = {m: mean_std([row[m] for row in rows]) for m in AGENT_METRICS}
    summaries = [r["summary"] for r in reports]
    return {"agents": agents, "makespan_s": mean_std([s["makespan_s"] for s in summaries]),
            "tokens_per_s": mean_std([s["tokens_per_s"] for s in summaries]),
            "num_trials": len(reports), "num_failed": sum(s["num_failed"] + s["num_failed_agents"] for s in summaries)}


def outputs(report: dict) -> dict[str, str]:
    """request_id -> output_sha256 of the finished requests in one report."""
    return {r["request_id"]: r["output_sha256"] for r in report["requests"] if r["state"] == "finished"}


def consistency(reference: dict[str, str], reports: list[dict]) -> dict:
    """Share of requests in `reports` whose output equals the reference (solo) output."""
    total = same = 0
    for rep in reports:
        for rid, sha in outputs(rep).items():
            total += 1
            same += int(reference.get(rid) == sha)
        total += sum(1 for rid in reference if rid not in outputs(rep))  # a missing request counts as different
    return {"share": same / total if total else None, "num_same": same, "num_requests": total}


def speedup(modes: dict[str, dict], baseline: str, candidates: list[str]) -> dict:
    """baseline mean makespan / the best candidate's mean makespan."""
    base = modes[baseline]["makespan_s"]["mean"]
    best = min(candidates, key=lambda m: modes[m]["makespan_s"]["mean"])
    return {"value": base / modes[best]["makespan_s"]["mean"], "baseline": baseline, "best_mode": best,
            "baseline_makespan_s": base, "best_makespan_s": modes[best]["makespan_s"]["mean"]}


def _ms(d: dict, digits: int = 3) -> str:
    return "-" if d["mean"] is None else f"{d['mean']:.{digits}f}±{d['std']:.{digits}f}"


def format_modes(modes: dict[str, dict]) -> str:
    """One row per (mode, agent): request-level and agent-level waiting/turnaround, mean±std."""
    head = (f"{'mode':<12} {'agent':<14} {'waiting_s':>13} {'turnaround_s':>13} "
            f"{'agent_wait_s':>13} {'agent_turn_s':>13}")
    lines = ["per request (kernel: arrival -> first scheduled / finish), and per agent process "
             "(session start -> first request scheduled / exit); mean±std over trials", head, "-" * len(head)]
    for mode, st in modes.items():
        for name, m in st["agents"].items():
            lines.append(f"{mode:<12} {name:<14} {_ms(m['waiting_s']):>13} {_ms(m['turnaround_s']):>13} "
                         f"{_ms(m['agent_waiting_s']):>13} {_ms(m['agent_turnaround_s']):>13}")
    lines.append("-" * len(head))
    for mode, st in modes.items():
        lines.append(f"{mode:<12} makespan {_ms(st['makespan_s'], 2)} s, {_ms(st['tokens_per_s'], 0)} tok/s, "
                     f"{st['num_trials']} trials, {st['num_failed']} failures")
    return "\n".join(lines)
