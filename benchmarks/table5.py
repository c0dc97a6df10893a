"""`aiosim bench table5`: the AIOS evaluation (Table 5): the math, narrative and rec agents run
sequentially without scheduling (one agent process at a time against a kernel) versus concurrently
under every policy; per mode and agent, mean and std of waiting and turnaround over trials;
speedup (sequential makespan / best concurrent makespan) and consistency (share of requests whose
output in a concurrent exact-mode run, --max-batch 1, equals the agent's solo sequential run).

Every figure comes from real processes: one kernel per mode (started once, reused across trials),
one OS process per agent per trial. Agents wait on a scripted external-API latency between steps
(think_s: 0.5 s per step here unless --param think_s=... is given), as the paper's agents wait on
tools and APIs; concurrency overlaps it, while the one worker serializes decoding (max-batch 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from agents.launch.spec import parse_agents

POLICIES = ("fifo", "rr", "mlfq", "fair", "priority")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("table5", help="AIOS Table 5: sequential vs concurrent agents (waiting, turnaround, speedup, consistency)")
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--plot", type=Path, help="write a PNG of makespan and turnaround per mode")
    p.add_argument("--trials", type=int, default=5, help="trials per mode (default 5)")
    p.add_argument("--agents", type=parse_agents, default=parse_agents("math:1,narrative:1,rec:1"))
    p.add_argument("--policies", default=",".join(POLICIES), help="concurrent exact-mode policies")
    p.add_argument("--quantum", type=int, default=8, help="decode steps per slice")
    p.add_argument("--batch", type=int, default=4, help="max batch of the extra batched concurrent mode (rr); 0 = none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="parameter for every agent")
    p.add_argument("--model", default="tiny")
    p.set_defaults(func=cmd_table5)
    return p


def mode_flags(policy: str, quantum: int, max_batch: int, model: str) -> list[str]:
    return ["--model", model, "--workers", "1", "--scheduler", policy, "--quantum", str(quantum),
            "--max-batch", str(max_batch), "--log-level", "WARNING"]


def run_mode(name: str, flags: list[str], args: argparse.Namespace, sequential: bool) -> list[dict]:
    """One kernel for the mode; `trials` sessions against it; one report per trial."""
    from agents.launch.launcher import KernelRun, run_session
    from agents.launch.report import agent_runs, build_report

    run = KernelRun.start(flags, None, num_workers=1)
    reports = []
    try:
        for trial in range(args.trials):
            session = run_session(run.kernel, args.agents, args.seed, args.param, sequential=sequential)
            rep = build_report(agent_runs(session), run.kernel.stats(), session.started_s, session.ended_s,
                               {"mode": name, "trial": trial, "flags": flags}, run.kernel.pid)
            reports.append(rep)
            s = rep["summary"]
            print(f"[table5] {name:<10} trial {trial + 1}/{args.trials}: makespan {s['makespan_s']:.2f} s, "
                  f"{s['num_requests']} requests, {s['num_failed'] + s['num_failed_agents']} failures", file=sys.stderr)
    finally:
        run.stop()
    return reports


def plan_modes(args: argparse.Namespace) -> list[tuple[str, list[str], bool]]:
    modes = [("sequential", mode_flags("fifo", args.quantum, 1, args.model), True)]
    for policy in filter(None, args.policies.split(",")):
        modes.append((policy, mode_flags(policy, args.quantum, 1, args.model), False))
    if args.batch > 1:
        modes.append((f"rr-batch{args.batch}", mode_flags("rr", args.quantum, args.batch, args.model), False))
    return modes


def evaluate(runs: dict[str, list[dict]], exact_modes: list[str]) -> dict:
    from agents.launch.compare import consistency, mode_stats, outputs, speedup

    modes = {name: mode_stats(reps) for name, reps in runs.items()}
    solo = outputs(runs["sequential"][0])
    concurrent = [m for m in modes if m != "sequential"]
    return {
        "modes": modes,
        "speedup": speedup(modes, "sequential", concurrent),
        "speedup_exact": speedup(modes, "sequential", exact_modes),
        "consistency": consistency(solo, [r for m in exact_modes for r in runs[m]])["share"],
        "consistency_by_mode": {m: consistency(solo, runs[m]) for m in modes},
    }


DEFAULT_THINK_S = 0.5


def cmd_table5(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if not any(p.startswith("think_s=") for p in args.param):
        args.param = [*args.param, f"think_s={DEFAULT_THINK_S}"]
    runs: dict[str, list[dict]] = {}
    plan = plan_modes(args)
    for name, flags, sequential in plan:
        print(f"[table5] mode {name}: {'one agent at a time' if sequential else 'all agents at once'} "
              f"({' '.join(flags)})", file=sys.stderr)
        runs[name] = run_mode(name, flags, args, sequential)
    exact = [name for name, flags, seq in plan if not seq and flags[flags.index("--max-batch") + 1] == "1"]
    result = {"config": {"trials": args.trials, "agents": ",".join(s.name for s in args.agents), "seed": args.seed,
                         "quantum": args.quantum, "batch": args.batch, "params": args.param, "model": args.model,
                         "exact_modes": exact},
              **evaluate(runs, exact), "elapsed_s": time.monotonic() - started,
              "trials": {name: reps for name, reps in runs.items()}}
    print_result(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    if args.plot is not None:
        from agents.launch.compare_plot import plot_modes

        plot_modes(result, args.plot)
    failures = sum(m["num_failed"] for m in result["modes"].values())
    return 0 if failures == 0 else 1


def print_result(result: dict) -> None:
    from agents.launch.compare import format_modes

    print(format_modes(result["modes"]))
    for key in ("speedup", "speedup_exact"):
        s = result[key]
        print(f"{key}: {s['value']:.2f}x = sequential {s['baseline_makespan_s']:.2f} s / "
              f"{s['best_mode']} {s['best_makespan_s']:.2f} s")
    by_mode = ", ".join(f"{m} {c['num_same']}/{c['num_requests']}" for m, c in result["consistency_by_mode"].items())
    print(f"consistency (exact-mode concurrent runs vs solo sequential outputs): {result['consistency']:.3f} [{by_mode}]")
