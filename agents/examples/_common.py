"""Shared pieces of the paper's example agents (math, narrative, rec, travel). Imports no torch.

Every plan is scripted from `random.Random(seed * 1000 + index)`: the same seed and index give
the same prompts, step counts and output lengths, so runs are comparable across schedulers.
Nothing depends on the meaning of the generated text (the tiny model's text is noise).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from agents.runtime import AgentContext
from syscalls.digests import output_sha256


def plan_rng(agent: AgentContext) -> random.Random:
    """The agent's scripted-plan RNG: deterministic for (seed, index)."""
    return random.Random(agent.seed * 1000 + agent.index)


@dataclass(slots=True)
class Plan:
    """Knobs every example agent reads from --param (defaults per agent kind)."""

    steps: int
    min_tokens: int
    max_tokens: int
    think_s: float  # scripted external-API latency per step (a stand-in for a real tool/API)

    @classmethod
    def from_params(cls, agent: AgentContext, steps: int, think_s: float = 0.25) -> Plan:
        p = agent.params
        max_tokens = int(p.get("max_tokens", 96))
        return cls(steps=int(p.get("steps", steps)), min_tokens=min(int(p.get("min_tokens", 16)), max_tokens),
                   max_tokens=max_tokens, think_s=float(p.get("think_s", think_s)))

    def tokens(self, rng: random.Random) -> int:
        return rng.randint(self.min_tokens, self.max_tokens)


@dataclass(slots=True)
class RequestLog:
    """The agent's own record of its llm.generate calls (returned in its result)."""

    agent: AgentContext
    rows: list[dict] = field(default_factory=list)

    def generate(self, prompt: str | list, max_new_tokens: int) -> dict:
        """One llm.generate with a stable request id `<name>/<n>`; returns the kernel's reply."""
        rid = self.agent.request_id(len(self.rows))
        started = time.monotonic()
        reply = self.agent.client.llm_generate(prompt=prompt, max_new_tokens=max_new_tokens, request_id=rid, logprobs=True)
        ids = reply["token_ids"]
        timing = reply.get("timing") or {}
        self.rows.append({"request_id": reply["request_id"], "output_tokens": len(ids),
                          "output_sha256": output_sha256(ids), "turnaround_s": time.monotonic() - started,
                          "kernel_turnaround_s": timing.get("turnaround_s"),
                          "waiting_s": timing.get("waiting_s")})
        return reply

    def result(self, **extra: object) -> dict:
        return {"requests": self.rows, "num_requests": len(self.rows),
                "output_tokens": sum(r["output_tokens"] for r in self.rows), **extra}


def think(plan: Plan, rng: random.Random) -> None:
    """Scripted latency of an external API the agent waits on (0.5x-1.5x think_s)."""
    factor = rng.uniform(0.5, 1.5)  # drawn even when think_s is 0, so plans do not depend on it
    if plan.think_s > 0:
        time.sleep(plan.think_s * factor)


def clip(text: str, limit: int = 400) -> str:
    """Keep the last `limit` characters of a growing context (the prompt must fit the window)."""
    return text[-limit:]
