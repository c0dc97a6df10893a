"""travel: plans a multi-leg trip with several tools (unit_convert, datetime, calculator), keeps the
itinerary in memory, and asks the LLM to describe each leg.

Params: steps (legs, default 2-4 from the seed), min_tokens/max_tokens (16/96), think_s (0.25).
"""

from __future__ import annotations

from agents.examples._common import Plan, RequestLog, plan_rng, think
from agents.runtime import AgentContext

CITIES = ("Lisbon", "Oslo", "Kyoto", "Lima", "Cairo", "Quebec", "Hanoi", "Perth")


def leg(agent: AgentContext, n: int, day: str, rng) -> dict:
    """Tools for one leg: distance km -> mi, arrival date, running cost."""
    k = agent.client
    km = rng.randint(80, 2500)
    miles = k.tool_call(name="unit_convert", args={"value": km, "from": "km", "to": "mi"})["result"]["value"]
    days = rng.randint(1, 4)
    arrive = k.tool_call(name="datetime", args={"op": "add", "date": day, "days": days})["result"]["date"]
    cost = k.tool_call(name="calculator", args={"expression": f"{km} * 0.12 + {days} * 80"})["result"]
    return {"leg": n, "km": km, "miles": round(miles, 1), "depart": day, "arrive": arrive, "cost": cost}


def run(agent: AgentContext) -> dict:
    rng = plan_rng(agent)
    plan = Plan.from_params(agent, steps=2 + rng.randint(0, 2))
    log = RequestLog(agent)
    route = rng.sample(CITIES, plan.steps + 1)
    day = f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    for n in range(plan.steps):
        info = leg(agent, n + 1, day, rng)
        agent.client.mem_put(key=f"leg-{n + 1}", value={**info, "from": route[n], "to": route[n + 1]})
        log.generate(f"Describe the trip from {route[n]} to {route[n + 1]} ({info['miles']} mi, "
                     f"arriving {info['arrive']}).", plan.tokens(rng))
        day = info["arrive"]
        think(plan, rng)
    itinerary = [agent.client.mem_get(key=f"leg-{n + 1}")["value"] for n in range(plan.steps)]
    total = sum(leg_["cost"] for leg_ in itinerary)
    return log.result(route=route, total_cost=total, legs=len(itinerary))
