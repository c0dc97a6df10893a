"""`aiosim bench sched --png`: mean turnaround against load, one colour per policy run.

Left: seconds; the measured values as points, the ideal replay of each run as a line, and the
region below every run's ideal SRPT replay (the least of the runs' bounds at that load, each
with its own fitted service) shaded: no run gets there (absent when the bench ran more than
one worker or batch). The first burst's srpt_ideal_s is not used here: when the machine's
speed drifts, faster runs would fall below it. Right: the same divided by each
run's own ideal SRPT replay (its fitted service), so speed drift between runs cancels and
the bound is the shaded band below 1. matplotlib (Agg) is imported here only."""

from __future__ import annotations

from pathlib import Path


def sweep_series(sweep: list[dict], scale_key: str | None = None) -> dict[str, dict[str, list]]:
    """Per policy run: loads, measured and ideal mean turnaround (None where missing), each
    divided by the run's `scale_key` figure when given."""
    series: dict[str, dict[str, list]] = {}
    for block in sweep:
        for name, m in block["policies"].items():
            scale = m.get(scale_key) if scale_key else 1.0
            s = series.setdefault(name, {"load": [], "measured": [], "ideal": []})
            s["load"].append(block["load"])
            for key, field in (("measured", "mean_turnaround_s"), ("ideal", "ideal_mean_turnaround_s")):
                value = m.get(field)
                s[key].append(value / scale if value is not None and scale else None)
    return series


def lowest_bound(block: dict) -> float | None:
    """The least srpt_ideal_same_service_s of a load's runs (None if a run has none)."""
    bounds = [m.get("srpt_ideal_same_service_s") for m in block["policies"].values()]
    return min(bounds) if bounds and None not in bounds else None


def plot_sweep(sweep: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    loads = [b["load"] for b in sweep]
    bounds = [lowest_bound(b) for b in sweep]
    if None not in bounds:
        left.fill_between(loads, 0, bounds, color="0.85", label="below every run's ideal SRPT replay (unreachable)")
        right.fill_between(loads, 0, [1.0] * len(loads), color="0.85", label="below each run's ideal SRPT")
    _draw(left, sweep_series(sweep), "mean turnaround (s)")
    _draw(right, sweep_series(sweep, "srpt_ideal_same_service_s"), "mean turnaround / the run's ideal SRPT replay")
    fig.suptitle("bench sched: measured (points) vs each run's ideal replay (lines)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw(ax, series: dict[str, dict[str, list]], ylabel: str) -> None:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    for i, (name, s) in enumerate(series.items()):
        color = cmap(i % cmap.N)
        ax.plot(s["load"], s["ideal"], color=color, linewidth=1.2, alpha=0.8)
        ax.plot(s["load"], s["measured"], "o", color=color, label=name)
    ax.set_xlabel("offered load (fraction of measured capacity)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
