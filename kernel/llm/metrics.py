"""Finished requests' timelines and the per-agent aggregation (AIOS: an agent's figure is the
mean over its requests). Pure."""

from __future__ import annotations

import hashlib
import struct

METRICS = ("waiting_s", "queued_s", "turnaround_s", "ttft_s")


def output_sha256(token_ids: list[int]) -> str:
    """Hash of generated token ids (uint32 little-endian): equal outputs, equal hashes."""
    return hashlib.sha256(struct.pack(f"<{len(token_ids)}I", *token_ids)).hexdigest()


class History:
    """Timelines of finished (and failed/cancelled) requests, in finishing order."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def add(self, timeline: dict) -> None:
        self.records.append(timeline)

    def to_wire(self, agent: str | None, active: list[dict]) -> dict:
        rows = [r for r in [*self.records, *active] if agent is None or r.get("agent") == agent]
        return {"requests": rows, "agents": aggregate(rows)}


def aggregate(rows: list[dict]) -> dict[str, dict]:
    by_agent: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("state") == "finished":
            by_agent.setdefault(r["agent"], []).append(r)
    out = {}
    for name, rs in sorted(by_agent.items()):
        out[name] = {"num_requests": len(rs), "output_tokens": sum(r.get("output_tokens", 0) for r in rs)}
        for m in METRICS:
            vals = [r[m] for r in rs if r.get(m) is not None]
            out[name][f"mean_{m}"] = sum(vals) / len(vals) if vals else None
    return out
