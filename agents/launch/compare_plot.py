"""PNG for `aiosim bench table5`: makespan per mode (mean±std) and per-agent turnaround per mode."""

from __future__ import annotations

from pathlib import Path


def plot_modes(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result["modes"]
    names = list(modes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    spans = [modes[m]["makespan_s"] for m in names]
    left.bar(names, [s["mean"] for s in spans], yerr=[s["std"] for s in spans], capsize=4,
             color=["tab:gray", *["tab:blue"] * (len(names) - 1)])
    left.set_ylabel("makespan (s), mean±std over trials")
    left.set_title(f"speedup {result['speedup']['value']:.2f}x ({result['speedup']['best_mode']}); "
                   f"consistency {result['consistency']:.3f}", fontsize=10)
    left.tick_params(axis="x", rotation=30)
    agents = list(modes[names[0]]["agents"])
    width = 0.8 / max(1, len(agents))
    for i, agent in enumerate(agents):
        vals = [modes[m]["agents"][agent]["agent_turnaround_s"] for m in names]
        xs = [x + (i - (len(agents) - 1) / 2) * width for x in range(len(names))]
        right.bar(xs, [v["mean"] or 0 for v in vals], width, yerr=[v["std"] or 0 for v in vals], capsize=2, label=agent)
    right.set_xticks(range(len(names)), names, rotation=30)
    right.set_ylabel("agent turnaround (s): session start -> exit")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
