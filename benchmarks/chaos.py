"""`aiosim bench chaos`: the paper's agents run once calm and once while a worker is killed with
SIGKILL every few seconds; every request must finish with the calm run's output.

Three launches of the same workload (same agents, seed and flags; 2 workers by default), each a
real kernel, workers and one process per agent: calm without checkpoints, calm with
`--checkpoint-every N` (the checkpoint overhead is 1 - its tokens/s over the first's), and chaos:
with checkpoints, a random live worker killed every --kill-every-s seconds. Per request (by id,
which the seeded agents make the same in every run) the chaos output's sha256 must equal the calm
one's. recovery_s: for each request a kill interrupted, the time from the kill until its first
slice that produced tokens again (replay included). Killing the kernel itself is not part of
this benchmark yet: the kernel does not yet resume its requests after a restart.
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
    every worker is ready: one failure at a time, so a kill never meets a worker still loading."""

    def __init__(self, kernel, num_workers: int, every_s: float, seed: int):
        self.kernel, self.num_workers, self.every_s, self.rng = kernel, num_workers, every_s, random.Random(seed)
        self.next_s = time.monotonic() + every_s
        self.kills: list[float] = []

    def __call__(self, session) -> None:
        if time.monotonic() < self.next_s:
            return
        workers = self.kernel.stats()["workers"]
        if len(workers) < self.num_workers or not all(w["is_ready"] for w in workers):
            return  # a replacement is still loading: wait for it
        os.kill(self.rng.choice([w["pid"] for w in workers]), signal.SIGKILL)
        self.kills.append(time.monotonic())
        self.next_s = time.monotonic() + self.every_s


def run_once(args: argparse.Namespace, name: str, checkpoint_every: int | None, kill: bool) -> dict:
    from agents.launch.launcher import KernelRun, run_session
    from agents.launch.report import agent_runs, build_report

    flags = ["--model", args.model, "--workers", str(args.workers), "--scheduler", args.scheduler,
             "--quantum", str(args.quantum), "--max-batch", str(args.max_batch), "--log-level", "WARNING"]
    flags += [] if checkpoint_every is None else ["--checkpoint-every", str(checkpoint_every)]
    progress(f"{name}: {' '.join(flags)}")
    run = KernelRun.start(flags, None, args.workers)
    try:
        killer = Killer(run.kernel, args.workers, args.kill_every_s, args.seed) if kill else None
        session = run_session(run.kernel, args.agents, args.seed, args.param, on_tick=killer)
        stats = run.kernel.stats()
        report = build_report(agent_runs(session), stats, session.started_s, session.ended_s, {}, run.kernel.pid)
    finally:
        run.stop()
    report["kills"] = killer.kills if killer else []
    return report


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


def compare(calm: dict, chaos: dict) -> dict:
    expected = {r["request_id"]: r["output_sha256"] for r in calm["requests"] if r["state"] == "finished"}
    got = {r["request_id"]: r for r in chaos["requests"]}
    identical = sum(1 for rid, sha in expected.items() if rid in got and got[rid]["output_sha256"] == sha
                    and got[rid]["state"] == "finished")
    return {"requests": len(expected), "lost": sum(1 for rid in expected if rid not in got),
            "failed": sum(1 for r in got.values() if r["state"] != "finished"),
            "failed_agents": chaos["summary"]["num_failed_agents"], "identical_outputs": identical}


def cmd_chaos(args: argparse.Namespace) -> int:
    plain = run_once(args, "calm, no checkpoints", 0, kill=False)
    calm = run_once(args, "calm, with checkpoints", args.checkpoint_every, kill=False)
    chaos = run_once(args, "chaos", args.checkpoint_every, kill=True)
    recoveries = recovery_times(chaos)
    tps = (plain["summary"]["tokens_per_s"], calm["summary"]["tokens_per_s"])
    result = {
        **compare(plain, chaos), "calm_with_checkpoints_identical": compare(plain, calm)["identical_outputs"],
        "kills": len(chaos["kills"]), "recoveries": len(recoveries),
        "recovery_s": {"p50": percentile(recoveries, 0.5), "p99": percentile(recoveries, 0.99),
                       "max": max(recoveries, default=None)},
        "checkpoint_overhead": 1 - tps[1] / tps[0] if tps[0] else None,
        "tokens_per_s": {"calm_no_checkpoints": tps[0], "calm_checkpoints": tps[1], "chaos": chaos["summary"]["tokens_per_s"]},
        "makespan_s": {"calm": calm["summary"]["makespan_s"], "chaos": chaos["summary"]["makespan_s"]},
        "config": {k: v for k, v in vars(args).items() if k not in ("func", "json", "agents")} | {
            "agents": [s.name for s in args.agents]},
        "targets": TARGETS,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("requests", "lost", "failed", "identical_outputs", "kills", "recovery_s",
                                             "checkpoint_overhead")}, indent=2))
    return 0
