"""`aiosim top`: a live view of a running kernel (rich), refreshed from sched.stats about once a second.

`screen()` is pure (a sched.stats result -> a rich renderable), so it is tested without a terminal;
`run_top()` owns the terminal: it polls the kernel and quits on `q` or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
import tty
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

MAX_QUEUE_ROWS = 20
ACTIVE = ("waiting", "ready", "running", "cancelling")


@dataclass(slots=True)
class Rate:
    """Tokens per second between two sched.stats samples."""

    t_s: float = 0.0
    num_tokens: int = 0
    per_s: float = 0.0

    def update(self, now_s: float, num_tokens: int) -> None:
        if self.t_s and now_s > self.t_s:
            self.per_s = max(0.0, num_tokens - self.num_tokens) / (now_s - self.t_s)
        self.t_s, self.num_tokens = now_s, num_tokens


def total_tokens(stats: dict) -> int:
    return sum(r.get("output_tokens") or 0 for r in stats.get("requests") or [])


def screen(stats: dict, now_s: float, tokens_per_s: float, address: str = "") -> Group:
    """The whole screen for one sched.stats result; `now_s` on the kernel's monotonic clock."""
    requests = stats.get("requests") or []
    active = sorted((r for r in requests if r["state"] in ACTIVE), key=lambda r: r.get("rank", 0))
    return Group(_header(stats, requests, active, tokens_per_s, address), _kv(stats, active), _agents(stats, requests),
                 _queue(active, now_s))


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _header(stats: dict, requests: list[dict], active: list[dict], tokens_per_s: float, address: str) -> Panel:
    cfg = stats.get("config") or {}
    ended = [r for r in requests if r["state"] not in ACTIVE]
    running = [r for r in active if r["state"] == "running"]
    line = Text.assemble(
        ("policy ", "dim"), (str(stats.get("policy")), "bold"), ("  quantum ", "dim"), str(cfg.get("quantum")),
        ("  max batch ", "dim"), str(cfg.get("max_batch")), ("  workers ", "dim"), str(len(stats.get("workers") or [])),
        ("\ntokens/s ", "dim"), (f"{tokens_per_s:,.0f}", "bold green"), ("  running ", "dim"), str(len(running)),
        ("  queued ", "dim"), str(len(active) - len(running)), ("  ended ", "dim"), str(len(ended)),
        ("  failed ", "dim"), (str(sum(r["state"] != "finished" for r in ended)), "red"))
    return Panel(line, title=f"aiosim top  {address}", subtitle="q or Ctrl-C quits", border_style="cyan")


def _kv(stats: dict, active: list[dict]) -> Table:
    table = Table(title="KV pool", title_justify="left", expand=True, box=None)
    table.add_column("worker", width=8)
    table.add_column("use", ratio=1)
    table.add_column("bytes", justify="right", width=24)
    running = {}
    for r in active:  # in rank order
        if r["state"] == "running" and r.get("worker_id") is not None:
            running.setdefault(r["worker_id"], []).append(r["rid"])
    for row in stats.get("kv") or []:
        used, budget = row["used_bytes"], row.get("budget_bytes") or 0
        bar = ProgressBar(total=budget or 1, completed=used, width=None)
        table.add_row(str(row["worker_id"]), bar, f"{used / 2**20:,.1f} / {budget / 2**20:,.1f} MiB")
        table.add_row("", Text("in its plan: " + (", ".join(running.get(row["worker_id"], [])) or "idle"), style="dim"), "")
    return table


def _agents(stats: dict, requests: list[dict]) -> Table:
    table = Table(title="agents", title_justify="left", expand=True)
    for name, justify in (("agent", "left"), ("requests", "right"), ("active", "right"), ("tokens", "right"),
                          ("mean waiting s", "right"), ("mean turnaround s", "right")):
        table.add_column(name, justify=justify)
    means = stats.get("agents") or {}
    for name in sorted({r["agent"] for r in requests}):
        mine = [r for r in requests if r["agent"] == name]
        m = means.get(name) or {}
        table.add_row(name, str(len(mine)), str(sum(r["state"] in ACTIVE for r in mine)),
                      str(sum(r.get("output_tokens") or 0 for r in mine)), _fmt_s(m.get("mean_waiting_s")),
                      _fmt_s(m.get("mean_turnaround_s")))
    return table


def _queue(active: list[dict], now_s: float) -> Table:
    table = Table(title="queue by policy rank", title_justify="left", expand=True)
    for name, justify in (("rank", "right"), ("request", "left"), ("state", "left"), ("worker", "right"),
                          ("tokens", "right"), ("waited s", "right"), ("age s", "right"), ("preempt", "right")):
        table.add_column(name, justify=justify)
    style = {"running": "green", "ready": "yellow", "waiting": "white", "cancelling": "red"}
    for r in active[:MAX_QUEUE_ROWS]:
        waited = r["waiting_s"] if r.get("waiting_s") is not None else now_s - r["arrival"]
        table.add_row(str(r.get("rank", "")), r["rid"], Text(r["state"], style=style.get(r["state"], "")),
                      "-" if r.get("worker_id") is None else str(r["worker_id"]),
                      f"{r.get('output_tokens') or 0}/{r.get('max_new_tokens', '?')}", f"{waited:.2f}",
                      f"{now_s - r['arrival']:.2f}", str(r.get("preemptions") or 0))
    if len(active) > MAX_QUEUE_ROWS:
        table.caption = f"... and {len(active) - MAX_QUEUE_ROWS} more"
    return table


@contextmanager
def _keys():
    """stdin in cbreak mode (keys one at a time, no echo) when it is a terminal."""
    if not sys.stdin.isatty():
        yield
        return
    fd, saved = sys.stdin.fileno(), termios.tcgetattr(sys.stdin.fileno())
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _is_quit(timeout_s: float) -> bool:
    """Wait up to timeout_s for a key on a terminal stdin; True for q/Q."""
    if not sys.stdin.isatty():
        time.sleep(timeout_s)
        return False
    ready, _, _ = select.select([sys.stdin], [], [], timeout_s)
    return bool(ready) and os.read(sys.stdin.fileno(), 16).lower().startswith(b"q")


def run_top(args: argparse.Namespace) -> int:
    from rich.live import Live

    from agents.sdk import Client, KernelError

    client = Client(args.address, timeout_s=args.timeout_s, server_key=args.server_key, client_keys=args.client_keys)
    rate = Rate()
    try:
        with _keys(), Live(auto_refresh=False, screen=True) as live:
            while True:
                stats = client.sched_stats()
                now = time.monotonic()
                rate.update(now, total_tokens(stats))
                live.update(screen(stats, now, rate.per_s, args.address), refresh=True)
                if _is_quit(args.interval_s):
                    return 0
    except KernelError as exc:
        print(f"aiosim top: {exc.code}: {exc.message} (is a kernel running at {args.address}?)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
