"""Metrics, targets and the table of `aiosim bench sched`. Pure: works on sched.stats rows.

A row is one request timeline from `sched.stats` (fields waiting_s, queued_s, turnaround_s,
ttft_s, preemptions, arrival, finish, output_tokens, state, rid).
"""

from __future__ import annotations

from statistics import fmean

from benchmarks.sched_workload import percentile

PREEMPTIVE = ("rr", "mlfq", "fair", "priority", "srpt", "las", "plas")
COLUMNS = (
    ("mean_waiting_s", "wait", "{:.3f}"), ("mean_turnaround_s", "turnaround", "{:.3f}"),
    ("ideal_mean_turnaround_s", "ideal", "{:.3f}"), ("ratio_to_ideal", "x ideal", "{:.2f}"),
    ("ratio_to_ideal_static", "x static", "{:.2f}"), ("ratio_to_ideal_measured_service", "x meas", "{:.2f}"), ("ratio_to_srpt_ideal", "x srpt", "{:.2f}"), ("theory_mean_turnaround_s", "theory", "{:.3f}"),
    ("ideal_long_run_s", "long run", "{:.3f}"),
    ("p99_turnaround_s", "p99 turn", "{:.3f}"), ("mean_queued_s", "queued", "{:.3f}"),
    ("mean_ttft_s", "ttft", "{:.3f}"), ("tokens_per_s", "tok/s", "{:.0f}"),
    ("saturated_tokens_per_s", "sat tok/s", "{:.0f}"), ("preemptions", "preempt", "{:d}"),
    ("overhead_ratio", "overhead", "{:.2%}"), ("num_requests", "done", "{:d}"), ("num_failed", "failed", "{:d}"),
)


def rows_with_label(stats: dict, prefix: str) -> list[dict]:
    """sched.stats rows of bench clients whose request label starts with prefix ('r' trace, 'w' burst)."""
    out = []
    for row in stats.get("requests") or []:
        agent, _, label = str(row.get("rid", "")).partition("/")
        if agent.startswith("bench-") and label.startswith(prefix):
            out.append(row)
    return out


def tokens_per_s(rows: list[dict]) -> float | None:
    """Output tokens of finished rows over the span from first arrival to last finish."""
    done = [r for r in rows if r.get("state") == "finished"]
    if not done:
        return None
    span = max(r["finish"] for r in done) - min(r["arrival"] for r in rows)
    return sum(r.get("output_tokens", 0) for r in done) / span if span > 0 else None


def summarize(rows: list[dict], num_submitted: int) -> dict:
    """Per-policy figures (AIOS definitions; means over finished requests)."""
    done = [r for r in rows if r.get("state") == "finished"]
    turnaround = sorted(r["turnaround_s"] for r in done)

    def mean(key: str) -> float | None:
        vals = [r[key] for r in done if r.get(key) is not None]
        return fmean(vals) if vals else None

    return {
        "num_requests": len(done),
        "num_failed": num_submitted - len(done),
        "mean_waiting_s": mean("waiting_s"),
        "mean_turnaround_s": fmean(turnaround) if turnaround else None,
        "p99_turnaround_s": percentile(turnaround, 0.99) if turnaround else None,
        "mean_queued_s": mean("queued_s"),
        "mean_ttft_s": mean("ttft_s"),
        "tokens_per_s": tokens_per_s(rows),
        "output_tokens": sum(r.get("output_tokens", 0) for r in done),
        "preemptions": sum(int(r.get("preemptions") or 0) for r in done),
    }


def overhead_delta(before: dict | None, after: dict | None) -> dict:
    """The sched.stats overhead accumulated between two reads (i.e. during the trace only)."""
    b, a = before or {}, after or {}

    def gap_steps(o: dict) -> float:
        per = o.get("gap_per_step_s")
        return o.get("gap_s", 0.0) / per if per else 0.0

    steps = a.get("num_steps", 0) - b.get("num_steps", 0)
    busy = a.get("busy_s", 0.0) - b.get("busy_s", 0.0)
    gap = a.get("gap_s", 0.0) - b.get("gap_s", 0.0)
    gsteps = gap_steps(a) - gap_steps(b)
    busy_per = busy / steps if steps else None
    gap_per = gap / gsteps if gsteps > 0.5 else None
    plans = a.get("num_plans", 0) - b.get("num_plans", 0)
    counts = {k: a.get(k, 0) - b.get(k, 0) for k in ("num_lookahead_plans", "num_revokes", "num_revoked_plans")}
    return {"num_plans": plans, **counts, "num_steps": steps, "busy_s": busy, "gap_s": gap,
            "busy_per_step_s": busy_per, "gap_per_step_s": gap_per,
            "steps_per_plan": steps / plans if plans else None,
            "overhead_ratio": gap_per / busy_per if gap_per is not None and busy_per else None}


REPEAT_FIELDS = ("mean_turnaround_s", "ratio_to_ideal", "ratio_to_ideal_static", "ratio_to_ideal_measured_service",
                 "ratio_to_srpt_ideal", "service_scale", "speed_range", "overhead_ratio")


def median_run(runs: list[dict]) -> dict:
    """A policy's run to report among its repeats: the median by ratio_to_ideal (by mean
    turnaround where there is no ideal; the lower middle of an even count), with every run's
    REPEAT_FIELDS under 'repeats' and its own place there as 'median_repeat'. One run is itself."""
    if len(runs) == 1:
        return runs[0]

    def key(i: int) -> float:
        value = runs[i].get("ratio_to_ideal")
        value = runs[i].get("mean_turnaround_s") if value is None else value
        return float("inf") if value is None else value

    chosen = sorted(range(len(runs)), key=key)[(len(runs) - 1) // 2]
    return {**runs[chosen], "median_repeat": chosen,
            "repeats": [{k: r.get(k) for k in REPEAT_FIELDS} for r in runs]}


def evaluate_targets(policies: dict[str, dict]) -> dict[str, dict]:
    """The four targets against fifo; a target whose inputs are missing is recorded as None."""
    fifo, rr = policies.get("fifo"), policies.get("rr")
    targets: dict[str, dict] = {}
    if fifo and rr:
        targets["rr_waiting_le_0.5x_fifo"] = _ratio_target(rr["mean_waiting_s"], fifo["mean_waiting_s"], 0.5, "le")
        trace = _ratio_target(rr["tokens_per_s"], fifo["tokens_per_s"], 0.9, "ge")
        sat = _ratio_target(rr.get("saturated_tokens_per_s"), fifo.get("saturated_tokens_per_s"), 0.9, "ge")
        targets["rr_tokens_per_s_ge_0.9x_fifo"] = {**trace, "saturated": sat,
                                                    "passed": bool(trace["passed"] and sat["passed"])}
    preemptive = {p: m for p, m in policies.items() if p in PREEMPTIVE and m.get("mean_turnaround_s") is not None}
    if fifo and preemptive:
        best = min(preemptive, key=lambda p: preemptive[p]["mean_turnaround_s"])
        t = _ratio_target(preemptive[best]["mean_turnaround_s"], fifo["mean_turnaround_s"], 0.7, "le")
        targets["best_preemptive_turnaround_le_0.7x_fifo"] = {**t, "policy": best}
    ratios = {p: m.get("overhead_ratio") for p, m in policies.items()}
    worst = max((r for r in ratios.values() if r is not None), default=None)
    targets["overhead_le_5pct_of_forward"] = {"value": worst, "limit": 0.05, "per_policy": ratios,
                                              "passed": worst is not None and worst <= 0.05}
    return targets


def frontier_targets(policies: dict[str, dict]) -> dict[str, dict]:
    """Measured against the ideal replay: fifo within 10% of ideal FIFO, rr within 1.2x of
    ideal PS (the target is set for quantum 4), srpt within 1.15x of the ideal SRPT replay
    (its own ideal: exact hints); a target whose input is missing is left out. srpt with noisy
    hints is reported beside them, against its own ideal and the SRPT bound."""
    targets: dict[str, dict] = {}
    fifo, rr, srpt = (policies.get(p, {}).get("ratio_to_ideal") for p in ("fifo", "rr", "srpt"))
    if fifo is not None:
        targets["fifo_within_10pct_of_ideal"] = {"ratio": fifo, "limit": [0.9, 1.1], "passed": 0.9 <= fifo <= 1.1}
    if rr is not None:
        targets["rr_le_1.2x_ideal_ps"] = {"ratio": rr, "limit": 1.2, "passed": rr <= 1.2}
    if srpt is not None:
        targets["srpt_le_1.15x_ideal_srpt"] = {"ratio": srpt, "limit": 1.15, "passed": srpt <= 1.15}
    noisy = {name: {"x_own_ideal": m.get("ratio_to_ideal"), "x_srpt_bound": m.get("ratio_to_srpt_ideal")}
             for name, m in policies.items() if name.startswith("srpt~")}
    if noisy:
        targets["srpt_hint_noise"] = {"per_noise": noisy, "limit": None, "passed": None}
    return targets


def _ratio_target(value: float | None, base: float | None, limit: float, sense: str) -> dict:
    ratio = value / base if value is not None and base else None
    ok = ratio is not None and (ratio <= limit if sense == "le" else ratio >= limit)
    return {"value": value, "fifo": base, "ratio": ratio, "limit": limit, "passed": ok}


def format_table(block: dict, capacity: float) -> str:
    """One load's table: a row per policy run, then every target's verdict."""
    policies, targets, workload = block["policies"], block["targets"], block["workload"]
    head = f"{'policy':<9}" + "".join(f"{label:>11}" for _, label, _ in COLUMNS)
    bound = block.get("srpt_ideal_s")
    lines = [f"capacity {capacity:.0f} tok/s; {workload['num_requests']} requests from {workload['num_agents']} "
             f"agents at {workload['arrival_rate_per_s']:.2f}/s (load {workload['load']:.2f}), "
             f"mean {workload['mean_tokens']:.1f} tokens, max-batch {workload['max_batch']}, "
             f"quantum {workload['quantum']}; ideal SRPT (the bound) {_fmt(bound, '{:.3f}')} s", head, "-" * len(head)]
    for name, m in policies.items():
        lines.append(f"{name:<9}" + "".join(f"{_fmt(m.get(key), fmt):>11}" for key, _, fmt in COLUMNS))
    repeated = {name: m["repeats"] for name, m in policies.items() if m.get("repeats")}
    if repeated:
        lines.append("repeats (x ideal / x meas per run; the median run shown above): " + "; ".join(
            f"{name} " + " ".join(f"{_fmt(r.get('ratio_to_ideal'), '{:.2f}')}/{_fmt(r.get('ratio_to_ideal_measured_service'), '{:.2f}')}"
                                  for r in runs) for name, runs in repeated.items()))
    lines.append("")
    for name, t in targets.items():
        lines.append(verdict_line(name, t))
    return "\n".join(lines)


def verdict_line(name: str, t: dict) -> str:
    if t.get("passed") is None:
        values = "; ".join(f"{k}: " + ", ".join(f"{m} {_fmt(v, '{:.2f}')}" for m, v in r.items())
                           for k, r in (t.get("per_noise") or {}).items())
        return f"INFO  {name}  {values}"
    detail = f"ratio {t['ratio']:.2f} (limit {t['limit']})" if t.get("ratio") is not None else ""
    if "saturated" in t and t["saturated"].get("ratio") is not None:
        detail += f"; saturated ratio {t['saturated']['ratio']:.2f}"
    if "policy" in t:
        detail += f"; best = {t['policy']}"
    if name.startswith("overhead") and t.get("value") is not None:
        detail = f"worst {t['value']:.2%} (limit 5%)"
    return f"{'PASS' if t['passed'] else 'FAIL'}  {name}  {detail}"


def _fmt(value: object, fmt: str) -> str:
    if value is None:
        return "-"
    return fmt.format(value)
