"""The tool pool with real runner processes: results, timeouts that never stall the event loop,
crashes, output limits, queueing, cancellation, and no stray processes after close."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kernel.context import DEFERRED
from syscalls.errors import ErrorCode, SyscallError
from tests.services.helpers import Harness, open_harness, remove_state

POOL = {
    "tool_workers": 2,
    "tool_timeout_s": 5.0,
    "tool_max_timeout_s": 10.0,
    "tool_max_output_bytes": 1000,
}


def run_until(h: Harness, predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        h.loop.run_once()


def wait_ready(h: Harness) -> None:
    pool = h.services.tools.pool
    run_until(h, lambda: len(pool.runners) == 2 and all(r.is_ready for r in pool.runners.values()))


def call_tool(h: Harness, caller: str, name: str, timeout_s: float | None = None, **args) -> dict:
    """tool.call through the handler; run the loop until its deferred reply is sent."""
    n = len(h.sent)
    assert h.call(caller, "tool.call", name=name, args=args, timeout_s=timeout_s) is DEFERRED
    run_until(h, lambda: len(h.sent) > n)
    return h.sent[n]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def pool_harness():
    h = open_harness(**POOL)
    wait_ready(h)
    yield h
    h.close()
    remove_state(h)


def test_tool_list_describes_schemas(pool_harness):
    tools = {t["name"]: t for t in pool_harness.call("a", "tool.list")["tools"]}
    assert {"calculator", "unit_convert", "datetime", "storage_search", "sleep", "crash"} <= set(
        tools
    )
    assert tools["calculator"]["args"] == [
        {"name": "expression", "type": "str", "required": True, "doc": "e.g. '2*(3+4) - sqrt(16)'"}
    ]


def test_calls_reply_through_the_deferred(pool_harness):
    reply = call_tool(pool_harness, "a", "calculator", expression="2*(3+4)")
    assert reply["ok"] is True and reply["result"] == {"result": 14}
    reply = call_tool(pool_harness, "a", "unit_convert", value=100, **{"from": "C", "to": "F"})
    assert reply["result"]["result"] == {"value": pytest.approx(212.0), "unit": "F"}


def test_bad_names_and_args_fail_before_deferring(pool_harness):
    with pytest.raises(SyscallError) as info:
        pool_harness.call("a", "tool.call", name="nope")
    assert info.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(SyscallError, match="field 'expression'"):
        pool_harness.call("a", "tool.call", name="calculator", args={"expression": 3})
    with pytest.raises(SyscallError, match="field 'bogus'"):
        pool_harness.call("a", "tool.call", name="calculator", args={"expression": "1", "bogus": 1})
    reply = call_tool(pool_harness, "a", "calculator", expression="2 +")
    assert (
        reply["error"]["code"] == "INVALID_ARGUMENT"
        and "field 'expression'" in reply["error"]["message"]
    )
    reply = call_tool(pool_harness, "a", "calculator", expression="1/0")
    assert (
        reply["error"]["code"] == "TOOL_ERROR" and "division by zero" in reply["error"]["message"]
    )


def test_timeout_kills_the_runner_while_the_loop_keeps_working(pool_harness):
    h, pool = pool_harness, pool_harness.services.tools.pool
    ticks: list[float] = []
    timer = h.loop.call_every(0.01, lambda: ticks.append(time.monotonic()))
    replies: dict[str, tuple[float, dict]] = {}
    t0 = time.monotonic()
    pool.submit(
        "a",
        "sleep",
        {"seconds": 30},
        0.6,
        lambda o: replies.setdefault("sleep", (time.monotonic(), o)),
    )
    sleeper_pid = next(r.proc.pid for r in pool.runners.values() if r.call is not None)
    pool.submit(
        "a",
        "calculator",
        {"expression": "6*7"},
        None,
        lambda o: replies.setdefault("calc", (time.monotonic(), o)),
    )
    run_until(h, lambda: "sleep" in replies)
    timer.cancel()
    (t_calc, calc), (t_sleep, slept) = replies["calc"], replies["sleep"]
    assert calc.ok and calc.result == 42 and t_calc < t_sleep  # answered while the sleeper ran
    assert slept.code == "TIMEOUT" and 0.55 <= t_sleep - t0 < 2.0
    assert len([t for t in ticks if t < t_sleep]) >= 30  # the loop never blocked
    run_until(h, lambda: not is_alive(sleeper_pid), 3.0)  # killed and reaped
    wait_ready(h)
    h.services.check_integrity()


def test_crashing_tools_yield_tool_error_and_the_pool_recovers(pool_harness):
    h = pool_harness
    reply = call_tool(h, "a", "crash", mode="raise", message="boom")
    assert reply["error"] == {"code": "TOOL_ERROR", "message": "RuntimeError: boom"}
    old_pids = set(h.services.tools.pool.pids())
    reply = call_tool(h, "a", "crash", mode="exit")
    assert reply["error"]["code"] == "TOOL_ERROR" and "died" in reply["error"]["message"]
    wait_ready(h)
    assert set(h.services.tools.pool.pids()) != old_pids
    assert call_tool(h, "a", "calculator", expression="1+1")["result"] == {"result": 2}
    h.services.check_integrity()


def test_a_runner_killed_mid_call_fails_that_call_alone(pool_harness):
    """SIGKILL from outside: that call gets TOOL_ERROR naming the exit, the other runner's call
    completes, and the pool replaces the runner."""
    h = pool_harness
    pool = h.services.tools.pool
    n = len(h.sent)
    assert h.call("a", "tool.call", name="sleep", args={"seconds": 30}, timeout_s=60) is DEFERRED
    run_until(h, lambda: pool.num_in_flight() == 1)
    (victim,) = [r for r in pool.runners.values() if r.call is not None]
    assert h.call("b", "tool.call", name="sleep", args={"seconds": 0.3}, timeout_s=60) is DEFERRED
    os.kill(victim.proc.pid, signal.SIGKILL)
    run_until(h, lambda: len(h.sent) >= n + 2)
    killed, other = sorted(h.sent[n : n + 2], key=lambda reply: reply["ok"])
    assert killed["error"]["code"] == "TOOL_ERROR" and "exit code -9" in killed["error"]["message"], killed
    assert other["ok"] and other["result"] == {"result": {"slept_s": 0.3}}, other
    wait_ready(h)
    assert victim.proc.pid not in pool.pids()
    h.services.check_integrity()


def test_output_limit(pool_harness):
    reply = call_tool(pool_harness, "a", "echo", text="x", times=5000)
    assert reply["error"]["code"] == "TOOL_ERROR" and "limit 1000" in reply["error"]["message"]
    assert call_tool(pool_harness, "a", "echo", text="x", times=10)["result"] == {
        "result": "x" * 10
    }


def test_calls_queue_when_all_runners_are_busy(pool_harness):
    h, pool = pool_harness, pool_harness.services.tools.pool
    done: list = []
    t0 = time.monotonic()
    for _ in range(5):
        pool.submit("a", "sleep", {"seconds": 0.2}, None, done.append)
    assert len(pool.queue) == 3 and pool.num_in_flight() == 2
    h.services.check_integrity()
    run_until(h, lambda: len(done) == 5)
    assert all(o.ok for o in done) and time.monotonic() - t0 >= 0.6  # three waves of two


def test_agent_exit_cancels_its_calls(pool_harness):
    h = pool_harness
    n = len(h.sent)
    h.call("z", "tool.call", name="sleep", args={"seconds": 30})
    h.call("z", "tool.call", name="sleep", args={"seconds": 30})
    h.call("z", "tool.call", name="sleep", args={"seconds": 30})
    h.services.on_agent_exit("z")
    assert [m["error"]["code"] for m in h.sent[n:]] == ["CANCELLED"] * 3
    wait_ready(h)
    h.services.check_integrity()


def test_storage_search_tool_sees_only_the_callers_storage(pool_harness):
    h = pool_harness
    h.call("a", "storage.put", key="fav", value={"genre": "jazz"})
    h.call("b", "storage.put", key="bfav", value="jazz too")
    hits = call_tool(h, "a", "storage_search", query="jazz")["result"]["result"]["hits"]
    assert [hit["key"] for hit in hits] == ["fav"]
    h.call(
        "a", "storage.put", key="fav2", value="more jazz"
    )  # written after the runner opened LMDB
    hits = call_tool(h, "a", "storage_search", query="jazz")["result"]["result"]["hits"]
    assert sorted(hit["key"] for hit in hits) == ["fav", "fav2"]


def test_close_leaves_no_runner_processes_or_socket():
    h = open_harness(**POOL)
    wait_ready(h)
    h.services.tools.pool.submit("a", "sleep", {"seconds": 30}, None, lambda o: None)
    pids = h.services.tools.pool.pids()
    sock = Path(h.services.tools.pool.address.removeprefix("ipc://"))
    assert len(pids) == 2 and all(is_alive(p) for p in pids) and sock.exists()
    h.close()
    assert not any(is_alive(p) for p in pids)
    assert not sock.exists()
    remove_state(h)
