"""--plot: a PNG with a Gantt chart of decode slices per agent (the AIOS Figure 3 interleaving)
above bars of each agent's mean waiting and turnaround. matplotlib (Agg) is imported here only."""

from __future__ import annotations

from pathlib import Path


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


def plot_run(report: dict, path: Path) -> Path:
    """Write the two-panel PNG for a launch report; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
