"""`aiosim bench sched`: every scheduling policy on the same heavy-tailed multi-agent trace.

Per policy, a real kernel (subprocess, temp state dir) and one worker; a driver in this process
holds one SDK Client per agent (bench-<i>). First a saturating burst of equal-length requests
(after a warm-up of one request per agent: the policy's saturated tokens/s; the first policy's burst, fifo's, is the
capacity that sizes the arrival rate), then the trace: Poisson arrivals offering load x
capacity tokens/s, lengths bounded-Pareto on [8, 512]. Figures come from the kernel's own
timelines (sched.stats); the overhead ratio is sched.stats' gap per decode step (kernel
scheduling + IPC between back-to-back plans) over busy worker time per decode step, counted
over the trace only. Beside every measurement: the ideal replay of the same trace (service
fitted to the run's own requests, on a server at the run's measured speed over time:
benchmarks/speed.py) and the M/G/1 closed form (benchmarks/sched_ideal.py), and the ideal SRPT
replay, the bound no policy can beat. `--repeats` runs everything N times and reports each
policy's median run.
`--loads` sweeps the offered load (the same trace, rescaled in time; capacity and the service
model come from the first run) and `--png` plots it; srpt also runs with noisy hints
(`--hint-noise`, as `srpt~<sigma>`). Heavy imports (zmq, the SDK) happen inside main().
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
    parser.add_argument("--loads", help="comma-separated loads to sweep (instead of --load), e.g. 0.5,0.7,0.8,0.9")
    parser.add_argument("--hint-noise", default="0.5,1.0",
                        help="srpt also runs with each request's hint times a seeded lognormal factor exp(sigma Z), "
                             "for each of these sigmas (comma-separated; '' for none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quantum", type=int, default=16, help="decode steps per slice (rr, fair, priority, srpt, las, plas; mlfq level 0)")
    parser.add_argument("--max-batch", type=int, default=1, help="requests decoded together, the same for every policy")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per kernel")
    parser.add_argument("--no-lookahead", dest="lookahead", action="store_false",
                        help="kernels run with --no-lookahead (workers then wait for the kernel between slices)")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--burst-tokens", type=int, default=3000, help="output tokens in the saturating burst")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of every policy at every load, one round of all policies after another; a "
                             "policy's figures are its median run's (by ratio_to_ideal), every run's ratios listed "
                             "under 'repeats' (the machine's speed can swing by a quarter within seconds)")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--png", metavar="PATH", help="plot mean turnaround against load: measured, ideal, SRPT bound")
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


def policy_runs(policies: list[str], hint_noise: str) -> list[str]:
    """The runs: every policy, then srpt~<sigma> for each hint noise when srpt is among them."""
    sigmas = [float(x) for x in hint_noise.split(",") if x.strip()]
    if any(x <= 0 for x in sigmas):
        raise SystemExit("bench sched: --hint-noise sigmas must be > 0")
    return policies + ([f"srpt~{x:g}" for x in sigmas] if "srpt" in policies else [])


def parse_run(name: str) -> tuple[str, float]:
    """'srpt~0.5' -> ('srpt', 0.5); a plain policy has noise 0."""
    policy, _, sigma = name.partition("~")
    return policy, float(sigma or 0.0)


def timeline_key(name: str, load: float, rep: int) -> str:
    """A run's key in --timelines: 'srpt@0.8', then 'srpt@0.8#2' for its second repeat."""
    return f"{name}@{load:g}" + (f"#{rep + 1}" if rep else "")


def sweep_loads(args: argparse.Namespace) -> list[float]:
    loads = [float(x) for x in args.loads.split(",") if x.strip()] if args.loads else [args.load]
    if not loads or any(not 0 < x for x in loads):
        raise SystemExit("bench sched: loads must be positive")
    return loads


def main(args: argparse.Namespace) -> int:
    from benchmarks.sched_report import format_table
    from benchmarks.sched_workload import WorkloadSpec, draw_lengths

    if args.agents < 1 or args.requests < 1 or args.repeats < 1:
        raise SystemExit("bench sched: --agents, --requests and --repeats must be positive")
    t0 = time.monotonic()
    loads, runs = sweep_loads(args), policy_runs(ordered_policies(args.policies), args.hint_noise)
    spec = WorkloadSpec(args.requests, args.agents, args.seed)
    lengths = draw_lengths(spec)
    run = Run(args, spec, sum(lengths) / len(lengths))
    sweep = []
    for load in loads:
        rounds = [{name: run.policy(name, load, rep) for name in runs} for rep in range(args.repeats)]
        block = run.block(load, rounds)
        print(format_table(block, run.capacity))
        sweep.append(block)
    out = {"loads": sweep, "capacity_tokens_per_s": run.capacity, "service_model": run.model.to_dict(),
           "capacity_policy": runs[0], "wall_s": time.monotonic() - t0}
    progress(f"done in {out['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    if args.png:
        from benchmarks.sched_plot import plot_sweep

        plot_sweep(sweep, Path(args.png))
    if args.timelines:
        with open(args.timelines, "w") as fh:
            json.dump(run.timelines, fh)
    return 0


class Run:
    """State shared across runs: capacity and service model (from the first run's burst) and
    the traces per (load, hint noise)."""

    def __init__(self, args: argparse.Namespace, spec: Any, mean_tokens: float) -> None:
        self.args, self.spec = args, spec
        self.burst_len = max(1, math.ceil(mean_tokens))
        self.burst_size = max(4 * args.max_batch, math.ceil(args.burst_tokens / self.burst_len))
        self.mean_tokens = mean_tokens
        self.capacity: float | None = None
        self.model: Any = None
        self.timelines: dict[str, list[dict]] = {}

    def rate(self, load: float) -> float:
        from benchmarks.sched_workload import arrival_rate

        return arrival_rate(load, self.capacity, self.mean_tokens)

    def trace(self, load: float, sigma: float) -> list:
        from benchmarks.sched_workload import make_trace

        return make_trace(self.spec, self.rate(load), hint_noise=sigma)

    def block(self, load: float, rounds: list[dict[str, dict]]) -> dict:
        """One load's results (each policy's median run of the rounds) with their yardsticks,
        the workload, targets and srpt_ideal_s: the ideal SRPT replay with the first burst's
        service model (each run's own bound, with its fitted model, is its
        srpt_ideal_same_service_s). The ideal models one server at batch 1: with more workers
        or a larger batch the yardsticks are left out."""
        from benchmarks.sched_ideal import service_law, srpt_bound_s
        from benchmarks.sched_report import evaluate_targets, frontier_targets, median_run
        from benchmarks.sched_workload import describe

        is_modelled = self.args.max_batch == 1 and self.args.workers == 1
        for rep, results in enumerate(rounds):
            for name, result in results.items():
                if is_modelled:
                    self._add_yardsticks(name, result, load, rep)
        results = {name: median_run([r[name] for r in rounds]) for name in rounds[0]}
        bound = srpt_bound_s(self.trace(load, 0.0), self.model) if is_modelled else None
        workload = {**describe(self.spec, self.trace(load, 0.0), self.rate(load)), "load": load,
                    "theory_load": self.rate(load) * service_law(self.spec, self.model).moment(1),
                    "max_batch": self.args.max_batch, "quantum": self.args.quantum, "workers": self.args.workers,
                    "model": self.args.model, "burst": {"num_requests": self.burst_size, "max_new_tokens": self.burst_len}}
        targets = {**evaluate_targets(results), **frontier_targets(results)}
        return {"load": load, "policies": results, "srpt_ideal_s": bound, "workload": workload, "targets": targets}

    def _add_yardsticks(self, name: str, result: dict, load: float, rep: int) -> None:
        from benchmarks.sched_ideal import calibrated, fitted, measured_service_ideal, yardsticks
        from benchmarks.speed import SpeedWarp, speed_profile, trace_offset_s

        policy, sigma = parse_run(name)
        trace = self.trace(load, sigma)
        rows = self.timelines.get(timeline_key(name, load, rep), [])
        model = fitted(trace, rows) or calibrated(self.model, trace, result["overhead"].get("busy_s"))
        result["service_model"] = model.to_dict()
        result["service_scale"] = model.size_s(self.burst_len) / self.model.size_s(self.burst_len)
        offset = trace_offset_s(rows, {r.label: r.arrival_s for r in trace})
        profile = speed_profile(rows, model, offset) if offset is not None else {}
        result["speed_range"] = [min(profile.values()), max(profile.values())] if profile else None
        result.update(yardsticks(policy, trace, result["mean_turnaround_s"], self.rate(load), self.spec, model,
                                 self.args.quantum, SpeedWarp(profile) if profile else None))
        result.update(measured_service_ideal(policy, trace, rows, result["mean_turnaround_s"], model, self.args.quantum))

    def policy(self, name: str, load: float, rep: int = 0) -> dict:
        from agents.launch.kernelproc import KernelProcess
        from benchmarks.sched_driver import Driver, kernel_flags

        started = time.monotonic()
        progress(f"{name} at load {load:g}{f' (repeat {rep + 1})' if rep else ''}: starting kernel")
        state_dir = Path(tempfile.mkdtemp(prefix="aiosim-sched-"))
        kernel = KernelProcess.start(kernel_flags(self.args, parse_run(name)[0]), state_dir)
        driver = None
        try:
            kernel.wait_ready(self.args.workers)
            driver = Driver(kernel.address, self.args.agents)
            result = self._measure(name, load, kernel, driver, rep)
        finally:
            if driver is not None:
                driver.close()
            result_code = kernel.stop()
            shutil.rmtree(state_dir, ignore_errors=True)
        result["kernel_exit_code"] = result_code
        result["wall_s"] = time.monotonic() - started
        return result

    def _measure(self, name: str, load: float, kernel: Any, driver: Any, rep: int) -> dict:
        from benchmarks.sched_ideal import service_model
        from benchmarks.sched_report import overhead_delta, rows_with_label, summarize, tokens_per_s
        from benchmarks.sched_workload import make_burst

        driver.replay(make_burst(self.args.agents, self.args.agents, self.burst_len, prefix="u"), timeout_s=600)
        burst = make_burst(self.burst_size, self.args.agents, self.burst_len)
        progress(f"{name}: burst of {len(burst)} x {self.burst_len} tokens")
        burst_run = driver.replay(burst, timeout_s=600)
        before = kernel.stats()
        saturated = tokens_per_s(rows_with_label(before, "w"))
        if self.capacity is None:
            self.capacity, self.model = saturated, service_model(rows_with_label(before, "w"))
            progress(f"capacity {saturated:.0f} tok/s, prefill {self.model.prefill_s * 1e3:.2f} ms, "
                     f"step {self.model.step_s * 1e3:.2f} ms")
        trace = self.trace(load, parse_run(name)[1])
        progress(f"{name}: replaying {len(trace)} requests at {self.rate(load):.2f}/s over {trace[-1].arrival_s:.0f} s")
        replay = driver.replay(trace, timeout_s=600)
        after = kernel.stats()
        overhead = overhead_delta(before.get("overhead"), after.get("overhead"))
        rows = rows_with_label(after, "r")
        self.timelines[timeline_key(name, load, rep)] = rows
        result = summarize(rows, len(trace))
        lags = replay.submit_lag_s
        result.update(
            saturated_tokens_per_s=saturated, overhead_ratio=overhead["overhead_ratio"], overhead=overhead,
            burst_failures=len(burst_run.failures), failures=replay.failures[:10], replay_wall_s=replay.wall_s,
            max_submit_lag_s=max(lags, default=0.0), mean_submit_lag_s=sum(lags) / len(lags) if lags else 0.0,
        )
        progress(f"{name}: mean turnaround {result['mean_turnaround_s']}, overhead {overhead['overhead_ratio']}")
        return result
