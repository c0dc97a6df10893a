"""`aiosim top`: its screen (pure: sched.stats -> rich renderable) on recorded and live stats, and
the command itself under a pseudo-terminal against the session's kernel, quitting on `q`."""

from __future__ import annotations

import copy
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from agents.sdk import Client, KernelError
from kernel.top import Rate, screen, total_tokens
from tests.kernelproc import ROOT, wait_for

STATS = json.loads((Path(__file__).parent / "data" / "sched_stats.json").read_text())


def text_of(renderable, width: int = 140) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_screen_shows_queue_in_rank_order_batches_kv_and_agents():
    stats = copy.deepcopy(STATS)
    states = ["waiting", "running", "ready", "running"]
    for rank, (r, state) in enumerate(zip(stats["requests"][3::-1], states, strict=True)):
        r.update(state=state, rank=rank, worker_id=None if state == "waiting" else 1, max_new_tokens=30)
    stats["kv"][1]["used_bytes"] = stats["kv"][1]["budget_bytes"] // 2
    text = text_of(screen(stats, stats["requests"][0]["arrival"] + 5.0, 1234.0, "ipc://x"))
    queue = text[text.index("queue by policy rank"):]
    rids = [r["rid"] for r in stats["requests"][3::-1]]
    assert [queue.index(rid) for rid in rids] == sorted(queue.index(rid) for rid in rids)
    assert "policy rr" in text and "tokens/s 1,234" in text and "running 2  queued 2  ended 2" in text
    assert f"in its plan: {rids[1]}, {rids[3]}" in text and "0.2 / 0.5 MiB" in text
    assert all(f"agent-{k}" in text[text.index("agents"):] for k in range(3))


def test_rate_is_tokens_per_second_between_samples():
    rate = Rate()
    rate.update(10.0, total_tokens(STATS))
    assert rate.per_s == 0.0
    rate.update(12.0, total_tokens(STATS) + 100)
    assert rate.per_s == 50.0


def test_screen_of_a_live_kernel_shows_a_running_request(kernel):
    with Client(kernel.address, name="top-live", secret_file=False) as c:
        pending = c.submit("llm.generate", prompt="long", max_new_tokens=2000, request_id="long")

        def decoding() -> dict | None:
            stats = c.sched_stats()
            return stats if any(r["rid"] == "top-live/long" and r["output_tokens"] for r in stats["requests"]) else None

        stats = wait_for(decoding, 30, "its first tokens")
        c.llm_cancel(request_id="long")
        text = text_of(screen(stats, time.monotonic(), 0.0))
        row = next(line for line in text.splitlines() if "top-live/long" in line and "/2000" in line)
        assert "running" in row or "ready" in row
        assert "top-live" in text[text.index("agents"):]
        with pytest.raises(KernelError) as err:
            pending.result(30)
        assert err.value.code == "CANCELLED"


def read_until(fd: int, marker: bytes, timeout_s: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout_s
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} within {timeout_s} s; got {seen[-2000:]!r}"
        seen += os.read(fd, 65536)
    return seen


def test_top_runs_in_a_terminal_and_quits_on_q(kernel):
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kernel", "top", "--address", kernel.address, "--interval-s", "0.2"],
                            cwd=ROOT, stdin=terminal, stdout=terminal, stderr=terminal, env={**os.environ, "COLUMNS": "120",
                                                                                              "LINES": "40"})
    os.close(terminal)
    try:
        read_until(controller, b"queue by policy rank", 30)
        read_until(controller, b"aiosim top", 5)  # refreshed at least once more
        os.write(controller, b"q")
        assert proc.wait(10) == 0
    finally:
        proc.kill() if proc.poll() is None else None
        os.close(controller)
