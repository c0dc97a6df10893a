"""`aiosim launch`: start a kernel and one process per agent, show progress, print the per-agent
table, write JSON (and a PNG with --plot), shut everything down. Light imports only."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from agents.launch.plot import PER_AGENT_MAX
from agents.launch.spec import parse_agents, parse_params
from kernel.flags import add_kernel_flags, kernel_argv

EPILOG = """examples:
  aiosim launch --agents math:2,narrative:1,rec:1 --scheduler rr --quantum 8 --max-batch 4 --json out/run.json --plot out/run.png
  aiosim launch --agents math:32,narrative:16,rec:16 --scheduler rr --max-batch 8 --json out/scale.json
  aiosim launch --agents math:1 --param steps=2 --param max_tokens=8 --param think_s=0
"""


ROWS_AUTO_MAX = 256  # agents up to which the JSON holds per-request rows by default
TABLE_MAX_AGENTS = 64  # agents up to which the table has one line per agent (else one per kind)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("launch", help="run a kernel plus one OS process per agent; print per-agent waiting/turnaround",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_launch_flags(p)
    add_kernel_flags(p, with_address=False)
    p.set_defaults(func=cmd_launch)
    return p


def add_launch_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("launch")
    g.add_argument("--agents", type=parse_agents, default=parse_agents("math:1,narrative:1,rec:1"),
                   help="KIND:N,... agent programs and counts (default math:1,narrative:1,rec:1)")
    g.add_argument("--seed", type=int, default=0, help="seed of every agent's scripted plan")
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter for every agent (e.g. steps=2, max_tokens=16, think_s=0)")
    g.add_argument("--json", type=Path, help="write the report (agents, requests, summary, config) here")
    g.add_argument("--plot", type=Path, help="write a PNG: Gantt chart of decode slices + waiting/turnaround bars per "
                   f"agent (above {PER_AGENT_MAX} agents: requests in flight over time and the figures per agent kind)")
    g.add_argument("--request-rows", choices=("auto", "yes", "no"), default="auto",
                   help=f"per-request rows in the JSON (auto: yes up to {ROWS_AUTO_MAX} agents; the per-agent "
                        "summaries are always there)")
    g.add_argument("--trace", type=Path, help="write the decode slices, preemptions and swaps as a Chrome trace-event "
                   "JSON (open it in https://ui.perfetto.dev or chrome://tracing)")
    g.add_argument("--ready-timeout-s", type=float, default=120.0, help="how long to wait for the kernel and workers")
    g.add_argument("--timeout-s", type=float, default=900.0, help="give up on agents still running after this")
    g.add_argument("--keep-state", action="store_true", help="keep the temporary state dir (logs, LMDB)")
    g.add_argument("--quiet", action="store_true", help="no live status line")


def kernel_flags(args: argparse.Namespace) -> list[str]:
    """Every kernel flag in args as `aiosim kernel` argv (state dir and address are added by the launcher)."""
    return kernel_argv(args)


def config_of(args: argparse.Namespace) -> dict:
    skip = {"func", "command"}
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in skip}
    out["agents"] = ",".join(s.name for s in args.agents)
    return out


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # one shutdown path: the same cleanup as Ctrl-C


def cmd_launch(args: argparse.Namespace) -> int:
    from agents.launch.run import launch

    parse_params(args.param)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    report = launch(args.agents, kernel_flags(args), args.state_dir, args.workers, seed=args.seed,
                    params=args.param, config=config_of(args), keep_state=args.keep_state,
                    show_progress=not args.quiet, ready_timeout_s=args.ready_timeout_s, timeout_s=args.timeout_s,
                    trace=args.trace)
    from agents.launch.report import format_kinds, format_table

    print(format_table(report) if len(report["agents"]) <= TABLE_MAX_AGENTS else format_kinds(report))
    with_rows = args.request_rows == "yes" or (args.request_rows == "auto" and len(args.agents) <= ROWS_AUTO_MAX)
    write_outputs(report, args.json, args.plot, with_rows)
    s = report["summary"]
    ok = s["num_failed_agents"] == 0 and s["num_failed"] == 0 and s["num_lost"] == 0 and report["kernel_exit_code"] == 0
    return 0 if ok else 1


def write_outputs(report: dict, json_path: Path | None, plot_path: Path | None, with_rows: bool = True) -> None:
    if plot_path is not None:
        from agents.launch.plot import plot_run

        started = time.monotonic()
        plot_run(report, plot_path)
        print(f"wrote {plot_path} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    if json_path is not None:
        out = report if with_rows else {**report, "requests": [], "requests_omitted": len(report["requests"])}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(out, indent=None if len(report["agents"]) > ROWS_AUTO_MAX else 1))
        print(f"wrote {json_path}", file=sys.stderr)
