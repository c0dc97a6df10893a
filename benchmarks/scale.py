"""`aiosim bench scale`: many agent processes on one machine, nothing lost.

Per size N (--agents 64,256,1000,2000): a fresh kernel (one worker); N agent processes forked
from the launch zygote (the paper's agents, mixed by --kinds, each a short plan), which register
and wait at a start gate (`aiosim agent run --start-file`). Once all N are registered the bench
measures, with every agent alive: the time it took (start_s, first fork to the Nth
registration), PSS per agent process (/proc/PID/smaps_rollup, a sample of up to --pss-sample
agents) and the kernel's syscall round trip (proc.ping from a probe client, sequential). Then it
opens the gate, pings again while the agents work (busy_ping_*), and after all exit reports
requests finished, failed and lost (an agent's request missing from the kernel's records or with
another output), makespan (gate to last exit) and tokens/s.

Once per run, the kernel's raw capacity: proc.ping round trips per second from 32 DEALER clients
(--clients, in 4 processes, one request in flight each) against the kernel, and the same clients
against a bare ZeroMQ ROUTER echo server (the ceiling of this transport on this machine).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path
from statistics import fmean

from agents.launch.spec import AgentSpec

DEFAULT_PARAMS = ("steps=1", "min_tokens=4", "max_tokens=12", "think_s=0.05")
TARGETS = {"failed": 0, "lost": 0, "pss_mib_per_agent": 6.0, "start_s_2000": 60.0, "ping_p99_ms": 20.0,
           "kernel_vs_raw_echo": 0.5}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("scale", help="thousands of agent processes: start time, PSS per agent, ping latency, nothing lost",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--agents", default="64,256,1000,2000", help="comma-separated agent counts")
    p.add_argument("--kinds", default="math:2,rec:1,narrative:1", help="agent kinds and their weights")
    p.add_argument("--param", action="append", default=list(DEFAULT_PARAMS), metavar="KEY=VALUE",
                   help="parameter for every agent (after the defaults; the last of a key wins)")
    p.add_argument("--scheduler", default="rr")
    p.add_argument("--quantum", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--pings", type=int, default=500, help="probe pings with all agents registered")
    p.add_argument("--pss-sample", type=int, default=200, help="agents whose PSS is read")
    p.add_argument("--clients", type=int, default=32, help="clients of the round-trip capacity test")
    p.add_argument("--capacity-s", type=float, default=3.0, help="seconds per capacity measurement")
    p.add_argument("--profile", action="store_true",
                   help="profile each kernel (aiosim kernel --profile) and report where its time went (top functions)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="tiny")
    p.set_defaults(func=cmd_scale)
    return p


def progress(message: str) -> None:
    print(f"[bench scale] {message}", file=sys.stderr, flush=True)


def specs_for(n: int, kinds: str) -> list[AgentSpec]:
    """n agents, kinds in proportion to their weights (KIND:WEIGHT,...)."""
    weights = [(k, int(w)) for k, w in (item.split(":") for item in kinds.split(","))]
    total = sum(w for _, w in weights)
    counts = [n * w // total for _, w in weights]
    counts[0] += n - sum(counts)
    return [AgentSpec(kind, i) for (kind, _), c in zip(weights, counts, strict=True) for i in range(c)]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def ping_ms(client, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t = time.perf_counter()
        client.proc_ping()
        out.append((time.perf_counter() - t) * 1000)
    return out


class Gate:
    """The agents' start gate (`aiosim agent run --start-file`): closed while we hold an
    exclusive flock on the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def open(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


class Phases:
    """on_tick of the launch session: wait for all registrations, measure, open the gate, ping."""

    def __init__(self, kernel, n: int, gate: Gate, args: argparse.Namespace):
        from agents.sdk import Client

        self.kernel, self.n, self.gate, self.args = kernel, n, gate, args
        self.probe = Client(kernel.address, timeout_s=60.0)
        self.row: dict = {"agents": n}
        self.busy: list[float] = []
        self.next_check_s = 0.0
        self.opened_s: float | None = None

    def __call__(self, session) -> None:
        now = time.monotonic()
        if self.opened_s is not None:
            if now >= self.next_check_s:
                self.busy += ping_ms(self.probe, 1)
                self.next_check_s = now + 0.05
            return
        if len(session.agents) < self.n or now < self.next_check_s:
            return
        self.next_check_s = now + 0.25
        live = self.probe.proc_ps(all=False)["agents"]
        if sum(1 for a in live if a["name"] != "operator") < self.n:
            return
        self.row["start_s"] = now - session.started_s
        progress(f"{self.n} agents registered after {self.row['start_s']:.1f} s; measuring")
        sample = random.Random(0).sample(session.agents, min(self.args.pss_sample, self.n))
        pss = [v for v in (pss_mib(a.pid) for a in sample) if v is not None]
        pings = ping_ms(self.probe, self.args.pings)
        self.row |= {"pss_mib_per_agent": fmean(pss) if pss else None, "pss_sampled": len(pss),
                     "ping_p50_ms": percentile(pings, 0.5), "ping_p99_ms": percentile(pings, 0.99)}
        self.gate.open()
        self.opened_s = time.monotonic()

    def close(self) -> None:
        self.probe.close()


def run_size(n: int, args: argparse.Namespace) -> dict:
    from agents.launch.launcher import KernelRun, run_session
    from agents.launch.report import agent_runs, build_report

    flags = ["--model", args.model, "--workers", "1", "--scheduler", args.scheduler, "--quantum", str(args.quantum),
             "--max-batch", str(args.max_batch), "--log-level", "WARNING"]
    profile = Path(f"/tmp/aiosim-scale-kernel-{n}.pstats") if args.profile else None
    flags += ["--profile", str(profile)] if profile else []
    run = KernelRun.start(flags, None, 1)
    try:
        gate = Gate(run.state_dir / "start.gate")
        phases = Phases(run.kernel, n, gate, args)
        progress(f"{n} agents: forking")
        try:
            session = run_session(run.kernel, specs_for(n, args.kinds), args.seed, args.param, on_tick=phases,
                                  timeout_s=1800.0, agent_argv=["--start-file", str(gate.path)])
        finally:
            phases.close()
            gate.open()
        report = build_report(agent_runs(session), run.kernel.stats(), session.started_s, session.ended_s, {},
                              run.kernel.pid)
    finally:
        run.stop()
    s = report["summary"]
    makespan = session.ended_s - (phases.opened_s or session.started_s)
    row = phases.row | {
        "finished": s["num_requests"] - s["num_failed"], "failed": s["num_failed"], "lost": s["num_lost"],
        "failed_agents": s["num_failed_agents"], "makespan_s": makespan,
        "tokens_per_s": s["output_tokens"] / makespan if makespan > 0 else None,
        "busy_ping_p50_ms": percentile(phases.busy, 0.5), "busy_ping_p99_ms": percentile(phases.busy, 0.99),
        "max_agent_rss_mib": s["max_agent_rss_bytes"] / 2**20}
    if profile is not None:
        row["kernel_profile"] = top_functions(profile)
    progress(json.dumps(row))
    return row


def top_functions(path: Path, count: int = 12) -> dict:
    """The kernel's busiest functions (own time), with its total CPU seconds."""
    import pstats

    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:count]
    return {"total_s": stats.total_tt,
            "top_own_time": [{"function": f"{Path(file).name}:{line}({name})", "calls": nc, "own_s": tt, "cum_s": ct}
                             for (file, line, name), (_cc, nc, tt, ct, _callers) in rows]}


# ---- raw capacity ---------------------------------------------------------------------------
def _ping_clients(address: str, num_sockets: int, seconds: float, raw: bool, out: mp.Queue) -> None:
    """One process: num_sockets DEALERs, one proc.ping in flight each, for `seconds`."""
    import zmq

    from syscalls.codec import pack
    from syscalls.envelope import request

    ctx = zmq.Context()
    poller = zmq.Poller()
    socks = []
    for _ in range(num_sockets):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(address)
        poller.register(s, zmq.POLLIN)
        socks.append(s)
    msg = pack(request(1, "proc.ping", {}, None))
    for s in socks:
        s.send(msg)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for s, _ in poller.poll(100):
            s.recv()
            count += 1
            s.send(msg)
    out.put(count / seconds)
    for s in socks:
        s.close(0)
    ctx.term()


def _echo_server(address: str, ready: mp.Event, stop: mp.Event) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(address)
    ready.set()
    while not stop.is_set():
        if sock.poll(100):
            for _ in range(256):
                try:
                    sock.send_multipart(sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    sock.close(0)
    ctx.term()


def round_trips_per_s(address: str, clients: int, seconds: float, raw: bool = False) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_ping_clients, args=(address, clients // 4, seconds, raw, out)) for _ in range(4)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total


def capacity(args: argparse.Namespace) -> dict:
    from agents.launch.launcher import KernelRun

    run = KernelRun.start(["--workers", "0", "--log-level", "WARNING"], None, 0)
    try:
        kernel_rps = round_trips_per_s(run.kernel.address, args.clients, args.capacity_s)
        raw_address = f"ipc://{run.state_dir / 'echo.sock'}"
        ctx = mp.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        server = ctx.Process(target=_echo_server, args=(raw_address, ready, stop))
        server.start()
        ready.wait(30)
        raw_rps = round_trips_per_s(raw_address, args.clients, args.capacity_s, raw=True)
        stop.set()
        server.join()
    finally:
        run.stop()
    return {"kernel_round_trips_per_s": kernel_rps, "raw_echo_round_trips_per_s": raw_rps,
            "kernel_vs_raw_echo": kernel_rps / raw_rps if raw_rps else None}


def cmd_scale(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.agents.split(",")]
    cap = capacity(args)
    progress(f"capacity: {json.dumps(cap)}")
    rows = [run_size(n, args) for n in sizes]
    result = {"rows": rows, **cap, "config": {k: v for k, v in vars(args).items() if k not in ("func", "json")},
              "cpus": os.cpu_count(), "targets": TARGETS}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0
