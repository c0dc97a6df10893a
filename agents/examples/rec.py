"""rec: stores a user's preferences in storage, then in several rounds reads them back, asks the
LLM for recommendations, and stores each round's recommendation (the paper's rec agent).

Params: steps (rounds, default 3-4 from the seed), min_tokens/max_tokens (16/96), think_s (0.25).
"""

from __future__ import annotations

from agents.examples._common import Plan, RequestLog, plan_rng, think
from agents.runtime import AgentContext

GENRES = ("jazz", "sci-fi", "thriller", "cooking", "history", "travel", "poetry", "chess")


def run(agent: AgentContext) -> dict:
    rng = plan_rng(agent)
    plan = Plan.from_params(agent, steps=3 + rng.randint(0, 1))
    log = RequestLog(agent)
    prefs_key = f"{agent.name}/prefs"
    prefs = {"likes": rng.sample(GENRES, 3), "budget": rng.randint(5, 50)}
    agent.client.storage_put(key=prefs_key, value=prefs)
    agent.client.mem_put(key="session", value={"rounds": plan.steps})
    for round_ in range(plan.steps):
        stored = agent.client.storage_get(key=prefs_key)["value"]
        prompt = f"User likes {', '.join(stored['likes'])}; budget {stored['budget']}. Recommendation {round_ + 1}:"
        text = log.generate(prompt, plan.tokens(rng))["text"]
        agent.client.storage_put(key=f"{agent.name}/rec-{round_ + 1}", value=text)
        think(plan, rng)
    listed = agent.client.storage_list(prefix=f"{agent.name}/")["keys"]
    return log.result(prefs=prefs, stored_keys=len(listed))
