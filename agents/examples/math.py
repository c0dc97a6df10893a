"""math: a word problem decomposed into 3-4 steps; each step asks the LLM to reason, then runs a
scripted calculator expression whose result feeds the next step's prompt (the paper's math agent).

Params: steps (default 3 or 4, from the seed), min_tokens/max_tokens (16/96), think_s (0.25).
"""

from __future__ import annotations

import random

from agents.examples._common import Plan, RequestLog, plan_rng, think
from agents.runtime import AgentContext

OPS = ("+", "-", "*")


def expression(prev: float, rng: random.Random) -> str:
    """A scripted calculator expression that uses the previous result."""
    a, b = rng.randint(2, 40), rng.randint(2, 9)
    return f"({prev} {rng.choice(OPS)} {a}) / {b}"


def run(agent: AgentContext) -> dict:
    rng = plan_rng(agent)
    plan = Plan.from_params(agent, steps=3 + rng.randint(0, 1))
    log = RequestLog(agent)
    value: float = rng.randint(10, 500)
    problem = f"Problem {agent.name}: start from {value} and apply {plan.steps} operations."
    results = []
    for step in range(plan.steps):
        prompt = f"{problem}\nStep {step + 1}: the current value is {value}. What should we compute next?"
        log.generate(prompt, plan.tokens(rng))
        think(plan, rng)
        expr = expression(value, rng)
        value = agent.client.tool_call(name="calculator", args={"expression": expr})["result"]
        results.append({"expression": expr, "value": value})
    return log.result(answer=value, tool_calls=results)
