"""Children of the kernel (workers, tool runners) die with it, even when it is killed -9.

`die_with_parent()` asks Linux to SIGKILL this process when its parent exits
(PR_SET_PDEATHSIG), and closes the race where the parent died before the request was made.
`ParentWatch` is the belt to those braces: a check the child's loops call (a worker's heartbeat
thread, its message loop and every decode step) which exits at once when the parent pid changes. Stdlib only: a worker imports
this before torch.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> int:
    """Arrange SIGKILL on parent death; returns the parent's pid (exits if it is already gone)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)  # orphaned before the signal was armed
    return parent


class ParentWatch:
    """Exit (status 0, no cleanup: the parent that owned us is gone) once the parent changes."""

    def __init__(self, parent: int):
        self.parent = parent

    def check(self) -> None:
        if os.getppid() != self.parent:
            os._exit(0)
