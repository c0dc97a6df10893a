"""The Chrome trace export: a recorded sched.stats (3 agents x 2 concurrent requests, 2 workers,
a KV pool small enough to force swaps) checked against the Trace Event Format, and `aiosim call
sched.stats --trace` against the session's kernel."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from kernel.trace import build_trace
from tests.kernelproc import run_cli

STATS = json.loads((Path(__file__).parent / "data" / "sched_stats.json").read_text())
PHASES = {"X", "i", "M"}


def check_trace_format(trace: dict) -> list[dict]:
    """Every event has name, ph, ts, pid, tid; complete events do not overlap on one track."""
    events = trace["traceEvents"]
    for e in events:
        assert {"name", "ph", "ts", "pid", "tid"} <= set(e), e
        assert e["ph"] in PHASES and isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "X":
            assert e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] in ("t", "p", "g")
    tracks = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for track, spans in tracks.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start + 1e-3, f"slices overlap on track {track}"
    named = {(e["pid"], e["tid"]) for e in events if e["name"] == "thread_name"}
    assert set(tracks) <= named, "every track is named"
    json.dumps(trace)
    return events


def test_recorded_stats_make_a_valid_trace_with_every_slice_preemption_and_swap():
    events = check_trace_format(build_trace(STATS))
    requests = STATS["requests"]
    processes = {e["args"]["name"]: e["pid"] for e in events if e["name"] == "process_name"}
    assert set(processes) == {"workers"} | {f"agent {r['agent']}" for r in requests}
    slices = [e for e in events if e["ph"] == "X" and e["pid"] != processes["workers"]]
    assert sorted((e["name"], e["args"]["tokens"]) for e in slices) == \
        sorted((r["rid"], s[3]) for r in requests for s in r["slices"])
    plans = [e for e in events if e["ph"] == "X" and e["pid"] == processes["workers"]]
    assert sum(e["args"]["tokens"] for e in plans) == sum(r["num_output_tokens"] for r in requests)
    assert max(len(e["args"]["requests"]) for e in plans) == 2  # the batches of --max-batch 2
    preempted = [e for e in events if e["name"] == "preempted"]
    assert len(preempted) == sum(r["preemptions"] for r in requests) > 0
    swaps = [e for e in events if e["name"].startswith("swap ")]
    assert len(swaps) == sum(len(r["swaps"]) for r in requests) > 0
    assert {e["name"] for e in swaps} == {"swap out", "swap in"}


def test_an_agent_with_one_request_at_a_time_has_one_track():
    one = [r for r in STATS["requests"] if r["rid"].endswith(".0")]  # one request of each agent
    events = check_trace_format(build_trace({**STATS, "requests": one}))
    agent_tracks = {(e["pid"], e["tid"]) for e in events if e["ph"] == "X" and e["name"] in {r["rid"] for r in one}}
    assert len(agent_tracks) == len(one)
    two_lanes = check_trace_format(build_trace(STATS))
    assert len({(e["pid"], e["tid"]) for e in two_lanes if e["name"] == "thread_name"}) > len(agent_tracks) + 1


def test_call_sched_stats_writes_the_trace(kernel, tmp_path):
    run_cli("call", "--address", kernel.address, "--agent", "tracer", "llm.generate", '{"prompt": "t", "max_new_tokens": 4}')
    out = run_cli("call", "--address", kernel.address, "sched.stats", "--trace", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    events = check_trace_format(json.loads((tmp_path / "t.json").read_text()))
    assert any(e["ph"] == "X" and e["name"].startswith("tracer/") for e in events)
    assert run_cli("call", "--address", kernel.address, "proc.ps", "--trace", str(tmp_path / "x.json")).returncode == 2
