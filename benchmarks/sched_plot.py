"""`aiosim bench sched --png`: mean turnaround against load, one colour per policy run, the
measured values as points, the ideal replay of each as a line, and the region below the ideal
SRPT replay shaded (no policy can get there; absent when the bench ran more than one worker
or batch). matplotlib (Agg) is imported here only."""

from __future__ import annotations

from pathlib import Path


def sweep_series(sweep: list[dict]) -> dict[str, dict[str, list]]:
    """Per policy run: loads, measured and ideal mean turnaround (None where missing)."""
    series: dict[str, dict[str, list]] = {}
    for block in sweep:
        for name, m in block["policies"].items():
            s = series.setdefault(name, {"load": [], "measured": [], "ideal": []})
            s["load"].append(block["load"])
            s["measured"].append(m.get("mean_turnaround_s"))
            s["ideal"].append(m.get("ideal_mean_turnaround_s"))
    return series


def plot_sweep(sweep: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    loads = [b["load"] for b in sweep]
    bounds = [b["srpt_ideal_s"] for b in sweep]
    if None not in bounds:
        ax.fill_between(loads, 0, bounds, color="0.85", label="below the ideal SRPT replay (unreachable)")
        ax.plot(loads, bounds, color="0.4", linewidth=1)
    cmap = colormaps["tab10"]
    for i, (name, s) in enumerate(sweep_series(sweep).items()):
        color = cmap(i % cmap.N)
        ax.plot(s["load"], s["ideal"], color=color, linewidth=1.2, alpha=0.8)
        ax.plot(s["load"], s["measured"], "o", color=color, label=f"{name} (line: its ideal replay)")
    ax.set_xlabel("offered load (fraction of measured capacity)")
    ax.set_ylabel("mean turnaround (s)")
    ax.set_title("bench sched: measured (points) vs ideal replay (lines)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
