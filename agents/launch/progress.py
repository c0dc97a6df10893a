"""A live status line on stderr: agents done/total, requests finished, tokens/s (sched.stats totals):
one line whatever the number of agents."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

TTY_INTERVAL_S = 0.5  # a terminal gets ~2 updates per second
LOG_INTERVAL_S = 5.0  # a log file gets a line every few seconds


@dataclass(slots=True)
class Progress:
    total_agents: int
    started_s: float
    label: str = "launch"
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    enabled: bool = True
    _last_s: float = 0.0
    _width: int = 0

    @property
    def interval_s(self) -> float:
        return TTY_INTERVAL_S if self.stream.isatty() else LOG_INTERVAL_S

    def is_due(self) -> bool:
        return self.enabled and time.monotonic() - self._last_s >= self.interval_s

    def update(self, num_done: int, num_failed: int, stats: dict | None) -> None:
        """Show one status line; `stats` is a sched.stats reply (its totals are read)."""
        self._last_s = time.monotonic()
        line = status_line(self.label, num_done, num_failed, self.total_agents, stats, self._last_s - self.started_s)
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stream.isatty() and self._width:
            self.stream.write("\n")
            self.stream.flush()


def status_line(label: str, num_done: int, num_failed: int, total: int, stats: dict | None, elapsed_s: float) -> str:
    """Counts and rates only (one line whatever the number of agents), from sched.stats totals."""
    t = (stats or {}).get("totals") or {}
    tokens = t.get("output_tokens", 0)
    rate = tokens / elapsed_s if elapsed_s > 0 else 0.0
    failed = f" ({num_failed} failed)" if num_failed else ""
    errors = t.get("failed", 0) + t.get("cancelled", 0)
    return (f"[{label}] agents {num_done}/{total} done{failed} | requests {t.get('finished', 0)} finished, "
            f"{t.get('active', 0)} active{f', {errors} failed/cancelled' if errors else ''} | {tokens} tokens, "
            f"{rate:.0f} tok/s | {elapsed_s:.1f} s")
