"""Agent specs: '--agents math:2,narrative:1' -> [math-0, math-1, narrative-0]."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class AgentSpec:
    """One agent process to start: program kind and instance index (name = '<kind>-<index>')."""

    kind: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"


def parse_agents(text: str) -> list[AgentSpec]:
    """'math:2,narrative:1,rec' -> specs; indices count per kind from 0 in order of appearance."""
    specs: list[AgentSpec] = []
    counts: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        kind, _, num = item.partition(":")
        try:
            n = int(num) if num else 1
        except ValueError:
            raise argparse.ArgumentTypeError(f"--agents: bad count in {item!r} (expected KIND:N)") from None
        if not kind or n < 0:
            raise argparse.ArgumentTypeError(f"--agents: bad item {item!r} (expected KIND:N)")
        for _ in range(n):
            specs.append(AgentSpec(kind, counts.get(kind, 0)))
            counts[kind] = counts.get(kind, 0) + 1
    if not specs:
        raise argparse.ArgumentTypeError("--agents: no agents given (e.g. math:2,narrative:1)")
    return specs


def parse_params(items: list[str]) -> list[str]:
    """Validate KEY=VALUE agent params (passed through to every agent as --param)."""
    for item in items:
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"--param expects KEY=VALUE, got {item!r}")
    return list(items)
