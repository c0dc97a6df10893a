"""The kernel-side records of the tool pool: a call, its outcome, a runner process.
Owner: the ToolPool, on the kernel main thread."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernel.loop import Timer


@dataclass(slots=True)
class ToolOutcome:
    ok: bool
    result: Any = None
    code: str = ""
    message: str = ""


@dataclass(slots=True)
class ToolCall:
    call_id: int
    caller: str
    tool: str
    args: dict
    on_done: Callable[[ToolOutcome], None]
    timer: Timer | None = None
    runner: Runner | None = None


@dataclass(slots=True)
class Runner:
    identity: bytes
    proc: subprocess.Popen
    is_ready: bool = False
    call: ToolCall | None = None
