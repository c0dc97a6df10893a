"""`aiosim bench programs`: every scheduling policy on agents whose plans are chains of calls.

Per policy, a real kernel (subprocess, temp state dir) and one worker; a driver in this process
holds one SDK Client per agent (bench-<i>) and runs the seeded programs of
benchmarks/programs_workload.py: each program's calls one after another, offered at load x
capacity tokens/s (capacity: the first policy's saturating burst, as in bench sched). The
figure is per-program turnaround, first call's arrival to last call's finish (kernel
timelines), mean and p99; per-call figures sit beside it. Heavy imports happen inside main().
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kernel.flags import POLICIES

COLUMNS = (
    ("mean_program_turnaround_s", "prog mean", "{:.3f}"), ("p99_program_turnaround_s", "prog p99", "{:.3f}"),
    ("median_program_turnaround_s", "prog p50", "{:.3f}"), ("mean_one_call_program_turnaround_s", "1-call", "{:.3f}"),
    ("mean_turnaround_s", "call mean", "{:.3f}"), ("tokens_per_s", "tok/s", "{:.0f}"),
    ("preemptions", "preempt", "{:d}"), ("num_failed", "failed", "{:d}"),
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("programs", help="scheduling policies on agents running chains of calls")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated, fifo first (default all)")
    parser.add_argument("--agents", type=int, default=16, help="clients (bench-<i>), >= 1")
    parser.add_argument("--programs", type=int, default=60, help="programs in the run")
    parser.add_argument("--load", type=float, default=0.8, help="offered tokens/s as a fraction of measured capacity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantum", type=int, default=16, help="decode steps per slice (as in bench sched)")
    parser.add_argument("--max-batch", type=int, default=1, help="requests decoded together, the same for every policy")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per kernel")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--burst-tokens", type=int, default=3000, help="output tokens in the capacity burst")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.set_defaults(func=main)


def progress(message: str) -> None:
    print(f"[bench programs] {message}", file=sys.stderr, flush=True)


def program_targets(results: dict[str, dict]) -> dict[str, dict]:
    """plas's mean program turnaround below rr's and fair's (None where a policy is missing)."""
    mean = {p: (results.get(p) or {}).get("mean_program_turnaround_s") for p in ("plas", "rr", "fair")}
    if any(v is None for v in mean.values()):
        return {}
    ok = mean["plas"] < mean["rr"] and mean["plas"] < mean["fair"]
    return {"plas_mean_program_turnaround_lt_rr_and_fair": {**mean, "passed": ok,
            "ratio_to_rr": mean["plas"] / mean["rr"], "ratio_to_fair": mean["plas"] / mean["fair"]}}


def format_table(results: dict[str, dict], targets: dict[str, dict], workload: dict) -> str:
    head = f"{'policy':<9}" + "".join(f"{label:>11}" for _, label, _ in COLUMNS)
    lines = [f"{workload['num_programs']} programs ({workload['num_calls']} calls) from {workload['num_agents']} agents "
             f"at {workload['arrival_rate_per_s']:.2f}/s (load {workload['load']:.2f}), "
             f"mean {workload['mean_program_tokens']:.0f} tokens a program", head, "-" * len(head)]
    for name, m in results.items():
        lines.append(f"{name:<9}" + "".join(f"{'-' if m.get(k) is None else fmt.format(m[k]):>11}" for k, _, fmt in COLUMNS))
    for name, t in targets.items():
        lines.append(f"{'PASS' if t['passed'] else 'FAIL'}  {name}  plas/rr {t['ratio_to_rr']:.2f}, plas/fair {t['ratio_to_fair']:.2f}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from benchmarks.programs_workload import (
        ProgramSpec,
        describe_programs,
        make_programs,
        mean_program_tokens,
    )
    from benchmarks.sched import ordered_policies

    if args.agents < 1 or args.programs < 1 or not 0 < args.load:
        raise SystemExit("bench programs: --agents, --programs and --load must be positive")
    t0 = time.monotonic()
    spec = ProgramSpec(args.programs, args.agents, args.seed)
    state: dict[str, Any] = {"mean_tokens": mean_program_tokens(spec)}
    results = {policy: run_policy(args, policy, spec, state) for policy in ordered_policies(args.policies)}
    programs = make_programs(spec, state["rate"])
    workload = {**describe_programs(spec, programs, state["rate"]), "load": args.load, "quantum": args.quantum,
                "max_batch": args.max_batch, "model": args.model}
    targets = program_targets(results)
    print(format_table(results, targets, workload))
    out = {"policies": results, "workload": workload, "capacity_tokens_per_s": state["capacity"],
           "targets": targets, "wall_s": time.monotonic() - t0}
    progress(f"done in {out['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


def run_policy(args: argparse.Namespace, policy: str, spec: Any, state: dict) -> dict:
    """One kernel: warm-up, the capacity burst on the first run only, then the programs."""
    from agents.launch.kernelproc import KernelProcess
    from benchmarks.programs_workload import make_programs, program_turnarounds, summarize_programs
    from benchmarks.sched_driver import Driver, kernel_flags
    from benchmarks.sched_report import rows_with_label, summarize, tokens_per_s
    from benchmarks.sched_workload import make_burst

    started = time.monotonic()
    progress(f"{policy}: starting kernel")
    state_dir = Path(tempfile.mkdtemp(prefix="aiosim-programs-"))
    kernel = KernelProcess.start(kernel_flags(args, policy), state_dir)
    driver = None
    try:
        kernel.wait_ready(args.workers)
        driver = Driver(kernel.address, args.agents)
        driver.replay(make_burst(args.agents, args.agents, 32, prefix="u"), timeout_s=600)
        if "capacity" not in state:
            burst = make_burst(max(4, math.ceil(args.burst_tokens / 32)), args.agents, 32)
            driver.replay(burst, timeout_s=600)
            state["capacity"] = tokens_per_s(rows_with_label(kernel.stats(), "w"))
            state["rate"] = args.load * state["capacity"] / state["mean_tokens"]
            progress(f"capacity {state['capacity']:.0f} tok/s -> {state['rate']:.2f} programs/s")
        programs = make_programs(spec, state["rate"])
        run = driver.run_programs(programs, timeout_s=600)
        rows = rows_with_label(kernel.stats(), "p")
    finally:
        if driver is not None:
            driver.close()
        code = kernel.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    result = {**summarize_programs(program_turnarounds(rows, programs), programs),
              **{k: v for k, v in summarize(rows, sum(len(p.call_tokens) for p in programs)).items()
                 if k in ("mean_turnaround_s", "tokens_per_s", "preemptions")},
              "failures": run.failures[:10], "kernel_exit_code": code, "wall_s": time.monotonic() - started}
    progress(f"{policy}: mean program turnaround {result['mean_program_turnaround_s']}")
    return result
