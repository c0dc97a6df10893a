"""idle: registers and stays alive for --param seconds=N (default 3600), pinging the kernel."""

from __future__ import annotations

import time

from agents.runtime import AgentContext


def run(agent: AgentContext) -> dict:
    deadline = time.monotonic() + float(agent.params.get("seconds", 3600))
    pings = 0
    while time.monotonic() < deadline:
        agent.client.proc_ping()
        pings += 1
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return {"pings": pings}
