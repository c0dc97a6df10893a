"""Liveness of agent processes without polling each one: a pidfd per registered pid (readable
once the process has exited) in one epoll set, whose fd the kernel's event loop polls like a
socket. O(1) per exit, nothing per idle agent. A pid that cannot be watched (no pidfd support,
or not visible here) is left to the periodic sweep (`ProcessTable.find_dead`).

Owner: the kernel main thread. Invariant: every watched fd is open and registered, once.
"""

from __future__ import annotations

import os
import select


class PidWatch:
    def __init__(self) -> None:
        self.epoll = select.epoll()
        self._keys: dict[int, int] = {}  # pidfd -> key (the agent id)
        self._fds: dict[int, int] = {}  # key -> pidfd

    def fileno(self) -> int:
        return self.epoll.fileno()

    def watch(self, key: int, pid: int) -> bool:
        """Watch `pid` under `key`; False if it cannot be (then the caller must poll it)."""
        try:
            fd = os.pidfd_open(pid)
        except (OSError, AttributeError):  # gone already, not ours to see, or no pidfd here
            return False
        self.epoll.register(fd, select.EPOLLIN)
        self._keys[fd], self._fds[key] = key, fd
        return True

    def unwatch(self, key: int) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            del self._keys[fd]
            self.epoll.unregister(fd)
            os.close(fd)

    def is_watched(self, key: int) -> bool:
        return key in self._fds

    def exited(self) -> list[int]:
        """Keys whose process has exited since the last call (each reported once, then unwatched)."""
        keys = [self._keys[fd] for fd, _ in self.epoll.poll(0) if fd in self._keys]
        for key in keys:
            self.unwatch(key)
        return keys

    def close(self) -> None:
        for key in list(self._fds):
            self.unwatch(key)
        self.epoll.close()
