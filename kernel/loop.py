"""The kernel's single-threaded event loop: ZeroMQ sockets and timers, never blocking on one peer.

Contract: every callback runs on the kernel main thread and must not block; socket callbacks
drain with zmq.NOBLOCK and return after at most `MAX_BATCH` messages so no peer starves others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable

import zmq

log = logging.getLogger("aiosim.loop")

MAX_BATCH = 256
MAX_POLL_MS = 100


class Timer:
    __slots__ = ("when", "callback", "interval", "is_cancelled")

    def __init__(self, when: float, callback: Callable[[], None], interval: float | None):
        self.when = when
        self.callback = callback
        self.interval = interval
        self.is_cancelled = False

    def cancel(self) -> None:
        self.is_cancelled = True


class EventLoop:
    """Owns the process's one zmq.Context, a poller, and a timer heap."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.poller = zmq.Poller()
        self._readers: dict[zmq.Socket | int, Callable[[zmq.Socket | int], None]] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._idle_hooks: list[Callable[[], None]] = []
        self.is_running = False

    def add_reader(self, sock: zmq.Socket | int, callback: Callable[[zmq.Socket | int], None]) -> None:
        """Call back when `sock` (a ZeroMQ socket, or a plain file descriptor) is readable."""
        self._readers[sock] = callback
        self.poller.register(sock, zmq.POLLIN)

    def remove_reader(self, sock: zmq.Socket | int) -> None:
        if self._readers.pop(sock, None) is not None:
            self.poller.unregister(sock)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        return self._push(Timer(time.monotonic() + delay_s, callback, None))

    def call_every(self, interval_s: float, callback: Callable[[], None]) -> Timer:
        return self._push(Timer(time.monotonic() + interval_s, callback, interval_s))

    def on_idle(self, callback: Callable[[], None]) -> None:
        """Run callback after a poll that found nothing to read (debug integrity checks)."""
        self._idle_hooks.append(callback)

    def _push(self, timer: Timer) -> Timer:
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if timer.is_cancelled:
                continue
            self._guard(timer.callback)
            if timer.interval is not None and not timer.is_cancelled:
                timer.when = now + timer.interval
                self._push(timer)

    def _poll_timeout_ms(self) -> int:
        if not self._timers:
            return MAX_POLL_MS
        delay = (self._timers[0][0] - time.monotonic()) * 1000
        return max(0, min(MAX_POLL_MS, int(delay) + 1))

    def _guard(self, fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception:  # one bad callback must never stop the kernel
            log.exception("callback %r failed", fn)

    def run_once(self) -> None:
        events = dict(self.poller.poll(self._poll_timeout_ms()))
        for sock, callback in list(self._readers.items()):
            if sock in events:
                self._guard(callback, sock)
        self._run_timers()
        if not events:
            for hook in self._idle_hooks:
                self._guard(hook)

    def run(self) -> None:
        self.is_running = True
        while self.is_running:
            self.run_once()

    def stop(self) -> None:
        self.is_running = False

    def close(self) -> None:
        for sock in list(self._readers):
            self.remove_reader(sock)
        self.ctx.destroy(linger=0)


def drain(sock: zmq.Socket, handle: Callable[[list[bytes]], None]) -> None:
    """Receive up to MAX_BATCH multipart messages without blocking and hand each to handle."""
    for _ in range(MAX_BATCH):
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
        except zmq.Again:
            return
        handle(frames)
