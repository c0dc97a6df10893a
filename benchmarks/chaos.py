"""`aiosim bench chaos`: the paper's agents run once calm and once while a worker is killed with
SIGKILL every few seconds and the kernel itself once; every request must finish with the calm
run's output.

Launches of the same workload (same agents, seed and flags; 2 workers by default), each a real
kernel, workers and one process per agent: --repeats pairs of calm runs without checkpoints and
with `--checkpoint-every N`, alternating (the checkpoint overhead is 1 - the median tokens/s with
over the median without), and chaos:
with checkpoints, a random live worker killed every --kill-every-s seconds, and after
--kernel-kill-after worker kills the kernel (kill -9), at once restarted on the same state dir
(its journal resumes the requests; the agents reconnect and re-attach). Per request (by id, which
the seeded agents make the same in every run) the output sha256 each agent received must equal
the calm one's. recovery_s: for each request a worker kill interrupted, the time from the kill
until its first slice that produced tokens again (replay included); kernel_recovery_s: the same
from the kernel kill (restart and model load included) for each request in flight then.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from statistics import median

from agents.launch.spec import parse_agents

DEFAULT_PARAMS = ("think_s=0.05", "steps=8", "min_tokens=96", "max_tokens=256")  # ~45 s of decoding on 2 workers
TARGETS = {"lost": 0, "failed": 0, "recovery_p99_s": 5.0, "max_checkpoint_overhead": 0.05}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("chaos", help="kill -9 workers during a launch: lost/failed requests, identical outputs, recovery time",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--agents", type=parse_agents, default="math:8,narrative:4,rec:4", help="KIND:COUNT,...")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scheduler", default="rr")
    p.add_argument("--quantum", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--checkpoint-every", type=int, default=None, help="decode steps (default: the kernel's default)")
    p.add_argument("--kill-every-s", type=float, default=3.0, help="seconds between worker kills (each waits until every worker is ready)")
    p.add_argument("--kernel-kill-after", type=int, default=1, help="worker kills before the kernel is killed and restarted (-1: never)")
    p.add_argument("--repeats", type=int, default=3, help="calm runs with and without checkpoints (alternating; "
                   "checkpoint_overhead compares their median tokens/s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", action="append", default=list(DEFAULT_PARAMS), metavar="KEY=VALUE",
                   help="parameter for every agent (after the defaults; the last of a key wins)")
    p.add_argument("--model", default="tiny")
    p.set_defaults(func=cmd_chaos)
    return p


def progress(message: str) -> None:
    print(f"[bench chaos] {message}", file=sys.stderr, flush=True)


class Killer:
    """on_tick: SIGKILL a random worker every `every_s` seconds (after the first `every_s`), when
    every worker is ready: one failure at a time, so a kill never meets a worker still loading.
    After `kernel_after` worker kills, the next kill is the kernel's, restarted at once with the
    same flags on the same state dir (the launch's KernelRun then holds the new one)."""

    def __init__(self, run, flags: list[str], num_workers: int, every_s: float, seed: int, kernel_after: int):
        self.run, self.flags, self.num_workers, self.every_s = run, flags, num_workers, every_s
        self.rng, self.kernel_after = random.Random(seed), kernel_after
        self.next_s = time.monotonic() + every_s
        self.kills: list[float] = []
        self.kernel_kills: list[float] = []
        self.restart_s: list[float] = []  # kill to the new kernel's workers ready
        self.stats_before: list[dict] = []  # the killed kernels' sched.stats, just before

    def __call__(self, session) -> None:
        if time.monotonic() < self.next_s:
            return
        workers = self.run.kernel.stats()["workers"]
        if len(workers) < self.num_workers or not all(w["is_ready"] for w in workers):
            return  # a replacement is still loading: wait for it
        if len(self.kills) == self.kernel_after and not self.kernel_kills:
            self._restart_kernel()
        else:
            os.kill(self.rng.choice([w["pid"] for w in workers]), signal.SIGKILL)
            self.kills.append(time.monotonic())
        self.next_s = time.monotonic() + self.every_s

    def _restart_kernel(self) -> None:
        from agents.launch.kernelproc import KernelProcess

        old = self.run.kernel
        self.stats_before.append(old.stats())
        old.proc.send_signal(signal.SIGKILL)
        self.kernel_kills.append(time.monotonic())
        old.proc.wait()
        old.client.close()
        progress("kernel killed (kill -9); restarting it on the same state dir")
        self.run.kernel = KernelProcess.start(self.flags, self.run.state_dir)
        self.run.kernel.wait_ready(self.num_workers)
        self.restart_s.append(time.monotonic() - self.kernel_kills[-1])
        progress(f"kernel serving again after {self.restart_s[-1]:.1f} s")


def run_once(args: argparse.Namespace, name: str, checkpoint_every: int | None, kill: bool) -> dict:
    from agents.launch.launcher import KernelRun, run_session
    from agents.launch.report import agent_runs, build_report

    flags = ["--model", args.model, "--workers", str(args.workers), "--scheduler", args.scheduler,
             "--quantum", str(args.quantum), "--max-batch", str(args.max_batch), "--log-level", "WARNING"]
    flags += [] if checkpoint_every is None else ["--checkpoint-every", str(checkpoint_every)]
    progress(f"{name}: {' '.join(flags)}")
    run = KernelRun.start(flags, None, args.workers)
    killer = Killer(run, flags, args.workers, args.kill_every_s, args.seed, args.kernel_kill_after) if kill else None
    try:
        session = run_session(run.kernel, args.agents, args.seed, args.param, on_tick=killer)
        stats = merge_stats([*(killer.stats_before if killer else []), run.kernel.stats()])
        runs = agent_runs(session)
        report = build_report(runs, stats, session.started_s, session.ended_s, {}, run.kernel.pid)
    finally:
        run.stop()
    report["received"] = {row["request_id"]: row["output_sha256"] for r in runs for row in r.result.get("requests") or []}
    report["kills"] = killer.kills if killer else []
    if killer:
        report["kernel_kills"], report["kernel_restart_s"] = killer.kernel_kills, killer.restart_s
        report["in_flight_at_kernel_kill"] = [r["rid"] for st in killer.stats_before for r in st["requests"]
                                              if r["state"] not in ("finished", "failed", "cancelled")]
    return report


def merge_stats(snapshots: list[dict]) -> dict:
    """sched.stats of successive kernels on one state dir: each request's latest row."""
    rows = {r["rid"]: r for st in snapshots for r in st["requests"]}
    return {**snapshots[-1], "requests": list(rows.values())}


def recovery_times(report: dict) -> list[float]:
    """Per recovery: its time until the request's next slice that produced tokens ended."""
    out = []
    for row in report["requests"]:
        for at in row.get("recovery_s") or []:
            ends = [end for _, start, end, tokens in row["slices"] if start >= at and tokens > 0]
            if ends:
                out.append(min(ends) - at)
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kernel_recovery_times(report: dict) -> list[float]:
    """Per request in flight at a kernel kill: the time from the kill until its first slice that
    produced tokens in the new kernel."""
    rows = {r["request_id"]: r for r in report["requests"]}
    out = []
    for at in report.get("kernel_kills") or []:
        for rid in report.get("in_flight_at_kernel_kill") or []:
            ends = [end for _, start, end, tokens in (rows.get(rid) or {}).get("slices", []) if start >= at and tokens > 0]
            if ends:
                out.append(min(ends) - at)
    return out


def compare(calm: dict, chaos: dict) -> dict:
    """Judged by what the agents received (their own records of each reply): a request of the calm
    run that no chaos agent received is lost; one the kernel ended otherwise than finished failed."""
    expected = calm["received"]
    got = chaos["received"]
    return {"requests": len(expected), "lost": sum(1 for rid in expected if rid not in got),
            "failed": sum(1 for r in chaos["requests"] if r["state"] != "finished"),
            "failed_agents": chaos["summary"]["num_failed_agents"],
            "identical_outputs": sum(1 for rid, sha in expected.items() if got.get(rid) == sha)}


def cmd_chaos(args: argparse.Namespace) -> int:
    plains, calms = [], []
    for i in range(args.repeats):  # alternating pairs: a noisy machine moves both alike
        pair = [("calm, no checkpoints", 0, plains), ("calm, with checkpoints", args.checkpoint_every, calms)]
        for name, every, out in pair if i % 2 == 0 else pair[::-1]:
            out.append(run_once(args, f"{name} ({i + 1}/{args.repeats})", every, kill=False))
    plain, calm = plains[0], calms[0]
    chaos = run_once(args, "chaos", args.checkpoint_every, kill=True)
    recoveries = recovery_times(chaos)
    kernel_recoveries = kernel_recovery_times(chaos)
    tps = (median([r["summary"]["tokens_per_s"] for r in plains]), median([r["summary"]["tokens_per_s"] for r in calms]))
    result = {
        **compare(plain, chaos), "calm_with_checkpoints_identical": compare(plain, calm)["identical_outputs"],
        "kills": len(chaos["kills"]) + len(chaos["kernel_kills"]), "worker_kills": len(chaos["kills"]),
        "kernel_kills": len(chaos["kernel_kills"]), "recoveries": len(recoveries),
        "recovery_s": {"p50": percentile(recoveries, 0.5), "p99": percentile(recoveries, 0.99),
                       "max": max(recoveries, default=None)},
        "kernel_restart_s": chaos["kernel_restart_s"],
        "kernel_recovery_s": {"requests": len(kernel_recoveries), "p50": percentile(kernel_recoveries, 0.5),
                              "p99": percentile(kernel_recoveries, 0.99), "max": max(kernel_recoveries, default=None)},
        "checkpoint_overhead": 1 - tps[1] / tps[0] if tps[0] else None,
        "tokens_per_s": {"calm_no_checkpoints": tps[0], "calm_checkpoints": tps[1], "chaos": chaos["summary"]["tokens_per_s"],
                         "calm_no_checkpoints_runs": [r["summary"]["tokens_per_s"] for r in plains],
                         "calm_checkpoints_runs": [r["summary"]["tokens_per_s"] for r in calms]},
        "makespan_s": {"calm": calm["summary"]["makespan_s"], "chaos": chaos["summary"]["makespan_s"]},
        "config": {k: v for k, v in vars(args).items() if k not in ("func", "json", "agents")} | {
            "agents": [s.name for s in args.agents]},
        "targets": TARGETS,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("requests", "lost", "failed", "identical_outputs", "kills", "recovery_s",
                                             "kernel_recovery_s", "checkpoint_overhead")}, indent=2))
    return 0
