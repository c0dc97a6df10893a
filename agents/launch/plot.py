"""--plot: a PNG with a Gantt chart of decode slices per agent (the AIOS Figure 3 interleaving)
above bars of each agent's mean waiting and turnaround; with more than PER_AGENT_MAX agents, the
same by agent kind: requests in flight over time (stacked by kind) above each kind's mean
waiting and turnaround. matplotlib (Agg) is imported here only."""

from __future__ import annotations

from pathlib import Path

PER_AGENT_MAX = 64


def _agent_colors(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _gantt(ax, report: dict, names: list[str], colors: dict[str, tuple]) -> None:
    """One row per agent: faint span arrival->finish per request, solid bars per decode slice."""
    origin = report["clock_origin_s"]
    row_of = {n: i for i, n in enumerate(names)}
    for r in report["requests"]:
        y = row_of.get(r["agent"])
        if y is None:
            continue
        if r.get("arrival") is not None and r.get("finish") is not None:
            ax.barh(y, r["finish"] - r["arrival"], left=r["arrival"] - origin, height=0.8,
                    color=colors[r["agent"]], alpha=0.15, linewidth=0)
        spans = [(s[1] - origin, s[2] - s[1]) for s in r.get("slices") or []]
        ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=colors[r["agent"]], edgecolor="black", linewidth=0.3)
    ax.set_yticks(range(len(names)), names, fontsize=_label_size(len(names)))
    ax.invert_yaxis()
    ax.set_xlabel("time since the first agent started (s)")
    ax.set_xlim(left=0)
    s = report["summary"]
    cfg = report.get("sched_config") or {}
    ax.set_title(f"decode slices per agent — policy {report.get('policy')}, quantum {cfg.get('quantum')}, "
                 f"max batch {cfg.get('max_batch')}; makespan {s['makespan_s']:.2f} s "
                 f"(faint: request arrival to finish)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def _bars(ax, report: dict, names: list[str], colors: dict[str, tuple]) -> None:
    """Grouped bars: mean waiting (hatched) and mean turnaround per agent."""
    agents = {a["name"]: a for a in report["agents"]}
    xs = range(len(names))
    width = 0.4
    wait = [agents[n]["waiting_s"] or 0.0 for n in names]
    turn = [agents[n]["turnaround_s"] or 0.0 for n in names]
    cols = [colors[n] for n in names]
    ax.bar([x - width / 2 for x in xs], wait, width, color=cols, hatch="//", edgecolor="black", linewidth=0.3,
           label="mean waiting (arrival -> first scheduled)")
    ax.bar([x + width / 2 for x in xs], turn, width, color=cols, edgecolor="black", linewidth=0.3,
           label="mean turnaround (arrival -> finish)")
    ax.set_xticks(list(xs), names, rotation=90 if len(names) > 8 else 0, fontsize=_label_size(len(names)))
    ax.set_ylabel("seconds (mean over the agent's requests)")
    ax.set_ylim(0, max([*turn, 1e-3]) * 1.3)  # headroom for the legend
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)


def _label_size(num_rows: int) -> float:
    return 9 if num_rows <= 12 else max(4.0, 9 - num_rows / 12)


def _in_flight(ax, report: dict, kinds: list[str], colors: dict[str, tuple]) -> None:
    """Requests in flight (arrived, not finished) over time, stacked by agent kind."""
    origin = report["clock_origin_s"]
    kind_of = {a["name"]: a["kind"] for a in report["agents"]}
    events = sorted({0.0, *(t - origin for r in report["requests"] for t in (r.get("arrival"), r.get("finish"))
                            if t is not None)})
    counts = {k: [0] * len(events) for k in kinds}
    index = {t: i for i, t in enumerate(events)}
    for r in report["requests"]:
        if r.get("arrival") is None or r.get("finish") is None:
            continue
        row = counts[kind_of.get(r["agent"], kinds[0])]
        row[index[r["arrival"] - origin]] += 1
        row[index[r["finish"] - origin]] -= 1
    stacks = []
    for k in kinds:
        level, out = 0, []
        for delta in counts[k]:
            level += delta
            out.append(level)
        stacks.append(out)
    ax.stackplot(events, stacks, labels=kinds, colors=[colors[k] for k in kinds], step="post")
    s = report["summary"]
    ax.set_title(f"requests in flight by agent kind — {len(report['agents'])} agents, policy {report.get('policy')}; "
                 f"makespan {s['makespan_s']:.1f} s, {s['num_requests']} requests, {s['num_failed']} failed", fontsize=10)
    ax.set_xlabel("time since the first agent started (s)")
    ax.set_ylabel("requests in flight")
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)


def _kind_bars(ax, report: dict, kinds: list[str], colors: dict[str, tuple]) -> None:
    from agents.launch.report import by_kind

    stats = by_kind(report["agents"])
    xs = range(len(kinds))
    width = 0.4
    cols = [colors[k] for k in kinds]
    wait = [stats[k]["waiting_s"] or 0.0 for k in kinds]
    turn = [stats[k]["turnaround_s"] or 0.0 for k in kinds]
    ax.bar([x - width / 2 for x in xs], wait, width, color=cols, hatch="//", edgecolor="black", linewidth=0.3,
           label="mean waiting (arrival -> first scheduled)")
    ax.bar([x + width / 2 for x in xs], turn, width, color=cols, edgecolor="black", linewidth=0.3,
           label="mean turnaround (arrival -> finish)")
    ax.set_xticks(list(xs), [f"{k} ({stats[k]['agents']} agents)" for k in kinds])
    ax.set_ylabel("seconds (mean over the kind's agents)")
    ax.set_ylim(0, max([*turn, 1e-3]) * 1.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)


def plot_run(report: dict, path: Path) -> Path:
    """Write the two-panel PNG for a launch report (per agent, or per kind beyond PER_AGENT_MAX
    agents); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(report["agents"]) > PER_AGENT_MAX:
        kinds = sorted({a["kind"] for a in report["agents"]})
        colors = _agent_colors(kinds)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), height_ratios=[4.5, 3.5])
        _in_flight(top, report, kinds, colors)
        _kind_bars(bottom, report, kinds, colors)
    else:
        names = [a["name"] for a in report["agents"]]
        colors = _agent_colors(names)
        gantt_h = min(14.0, 1.0 + 0.35 * len(names))
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, gantt_h + 3.5), height_ratios=[gantt_h, 3.5])
        _gantt(top, report, names, colors)
        _bars(bottom, report, names, colors)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
