"""`aiosim bench sched`: every scheduling policy on the same heavy-tailed multi-agent trace.

Per policy, a real kernel (subprocess, temp state dir) and one worker; a driver in this process
holds one SDK Client per agent (bench-<i>). First a saturating burst of equal-length requests
(after a warm-up of one request per agent: the policy's saturated tokens/s; the first policy's burst, fifo's, is the
capacity that sizes the arrival rate), then the trace: Poisson arrivals offering load x
capacity tokens/s, lengths bounded-Pareto on [8, 512]. Figures come from the kernel's own
timelines (sched.stats); the overhead ratio is sched.stats' gap per decode step (kernel
scheduling + IPC between back-to-back plans) over busy worker time per decode step, counted
over the trace only. Heavy imports (zmq, the SDK) happen inside main().
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


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("sched", help="scheduling policies on one seeded heavy-tailed multi-agent trace")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated, fifo first (default all)")
    parser.add_argument("--agents", type=int, default=16, help="clients (bench-<i>), >= 1")
    parser.add_argument("--requests", type=int, default=300, help="requests in the trace")
    parser.add_argument("--load", type=float, default=0.8, help="offered tokens/s as a fraction of measured capacity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantum", type=int, default=16, help="decode steps per slice (rr, fair, priority; mlfq level 0)")
    parser.add_argument("--max-batch", type=int, default=1, help="requests decoded together, the same for every policy")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per kernel")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--burst-tokens", type=int, default=3000, help="output tokens in the saturating burst")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--timelines", metavar="PATH", help="also write every trace request's sched.stats timeline here")
    parser.set_defaults(func=main)


def progress(message: str) -> None:
    print(f"[bench sched] {message}", file=sys.stderr, flush=True)


def ordered_policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names:
        raise SystemExit(f"bench sched: unknown policies {unknown}; known: {', '.join(POLICIES)}")
    return sorted(dict.fromkeys(names), key=lambda p: p != "fifo")


def main(args: argparse.Namespace) -> int:
    from benchmarks.sched_report import evaluate_targets, format_table
    from benchmarks.sched_workload import WorkloadSpec, describe, draw_lengths

    if args.agents < 1 or args.requests < 1 or not 0 < args.load:
        raise SystemExit("bench sched: --agents, --requests and --load must be positive")
    t0 = time.monotonic()
    policies = ordered_policies(args.policies)
    spec = WorkloadSpec(args.requests, args.agents, args.seed)
    lengths = draw_lengths(spec)
    mean_tokens = sum(lengths) / len(lengths)
    run = Run(args, spec, mean_tokens)
    results = {}
    for policy in policies:
        results[policy] = run.policy(policy)
    workload = {**describe(spec, run.trace, run.rate), "load": args.load, "max_batch": args.max_batch,
                "quantum": args.quantum, "workers": args.workers, "model": args.model,
                "burst": {"num_requests": run.burst_size, "max_new_tokens": run.burst_len},
                "capacity_policy": policies[0]}
    targets = evaluate_targets(results)
    out = {"policies": results, "workload": workload, "capacity_tokens_per_s": run.capacity,
           "targets": targets, "wall_s": time.monotonic() - t0}
    print(format_table(results, targets, run.capacity, workload))
    progress(f"done in {out['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    if args.timelines:
        with open(args.timelines, "w") as fh:
            json.dump(run.timelines, fh)
    return 0


class Run:
    """State shared across policies: the capacity (from the first policy's burst) and the trace."""

    def __init__(self, args: argparse.Namespace, spec: Any, mean_tokens: float) -> None:
        self.args, self.spec = args, spec
        self.burst_len = max(1, math.ceil(mean_tokens))
        self.burst_size = max(4 * args.max_batch, math.ceil(args.burst_tokens / self.burst_len))
        self.mean_tokens = mean_tokens
        self.capacity: float | None = None
        self.rate = 0.0
        self.trace: list = []
        self.timelines: dict[str, list[dict]] = {}

    def policy(self, policy: str) -> dict:
        from agents.launch.kernelproc import KernelProcess
        from benchmarks.sched_driver import Driver, kernel_flags

        started = time.monotonic()
        progress(f"{policy}: starting kernel")
        state_dir = Path(tempfile.mkdtemp(prefix="aiosim-sched-"))
        kernel = KernelProcess.start(kernel_flags(self.args, policy), state_dir)
        driver = None
        try:
            kernel.wait_ready(self.args.workers)
            driver = Driver(kernel.address, self.args.agents)
            result = self._measure(policy, kernel, driver)
        finally:
            if driver is not None:
                driver.close()
            result_code = kernel.stop()
            shutil.rmtree(state_dir, ignore_errors=True)
        result["kernel_exit_code"] = result_code
        result["wall_s"] = time.monotonic() - started
        return result

    def _measure(self, policy: str, kernel: Any, driver: Any) -> dict:
        from benchmarks.sched_report import overhead_delta, rows_with_label, summarize, tokens_per_s
        from benchmarks.sched_workload import arrival_rate, make_burst, make_trace

        driver.replay(make_burst(self.args.agents, self.args.agents, self.burst_len, prefix="u"), timeout_s=600)
        burst = make_burst(self.burst_size, self.args.agents, self.burst_len)
        progress(f"{policy}: burst of {len(burst)} x {self.burst_len} tokens")
        burst_run = driver.replay(burst, timeout_s=600)
        before = kernel.stats()
        saturated = tokens_per_s(rows_with_label(before, "w"))
        if self.capacity is None:
            self.capacity = saturated
            self.rate = arrival_rate(self.args.load, saturated, self.mean_tokens)
            self.trace = make_trace(self.spec, self.rate)
            progress(f"capacity {saturated:.0f} tok/s -> {self.rate:.2f} requests/s, "
                     f"trace {self.trace[-1].arrival_s:.0f} s")
        progress(f"{policy}: replaying {len(self.trace)} requests")
        replay = driver.replay(self.trace, timeout_s=600)
        after = kernel.stats()
        overhead = overhead_delta(before.get("overhead"), after.get("overhead"))
        rows = rows_with_label(after, "r")
        self.timelines[policy] = rows
        result = summarize(rows, len(self.trace))
        lags = replay.submit_lag_s
        result.update(
            saturated_tokens_per_s=saturated, overhead_ratio=overhead["overhead_ratio"], overhead=overhead,
            burst_failures=len(burst_run.failures), failures=replay.failures[:10], replay_wall_s=replay.wall_s,
            max_submit_lag_s=max(lags, default=0.0), mean_submit_lag_s=sum(lags) / len(lags) if lags else 0.0,
        )
        progress(f"{policy}: mean turnaround {result['mean_turnaround_s']}, "
                 f"overhead {overhead['overhead_ratio']}")
        return result
