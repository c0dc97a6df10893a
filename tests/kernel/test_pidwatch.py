"""PidWatch: an exited process is reported once, by key, without polling each pid."""

from __future__ import annotations

import select
import subprocess
import sys

from kernel.loop import EventLoop
from kernel.pidwatch import PidWatch


def test_an_exit_is_reported_once_and_live_processes_are_not():
    watch = PidWatch()
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(3)]
    try:
        for key, proc in enumerate(procs):
            assert watch.watch(key, proc.pid)
        assert watch.exited() == []
        procs[1].kill()
        procs[1].wait()  # reaped: the pidfd still reports the exit
        assert select.select([watch], [], [], 5)[0], "the epoll fd becomes readable"
        assert watch.exited() == [1]
        assert watch.exited() == [] and not watch.is_watched(1) and watch.is_watched(0)
        procs[2].kill()  # not reaped (a zombie) counts as exited too
        assert select.select([watch], [], [], 5)[0]
        assert watch.exited() == [2]
    finally:
        for p in procs:
            p.kill()
            p.wait()
        watch.close()


def test_a_pid_that_is_gone_cannot_be_watched():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    watch = PidWatch()
    try:
        assert not watch.watch(7, proc.pid)
        assert not watch.is_watched(7)
    finally:
        watch.close()


def test_the_event_loop_calls_back_when_a_watched_process_exits():
    loop, watch = EventLoop(), PidWatch()
    seen: list[int] = []
    loop.add_reader(watch.fileno(), lambda _: seen.extend(watch.exited()))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert watch.watch(42, proc.pid)
        proc.wait()
        for _ in range(50):
            loop.run_once()
            if seen:
                break
        assert seen == [42]
        loop.run_once()  # level-triggered: nothing left to report, nothing spins
        assert seen == [42] and not watch.is_watched(42)
    finally:
        loop.remove_reader(watch.fileno())
        watch.close()
        loop.close()
