"""narrative: a multi-chapter story whose context grows: each chapter's prompt carries the story
so far (the previous outputs), and each chapter is stored in storage, then read back.

Params: steps (chapters, default 3-5 from the seed), min_tokens/max_tokens (16/96), think_s (0.25),
context_chars (how much of the story so far each prompt carries, default 600).
"""

from __future__ import annotations

from agents.examples._common import Plan, RequestLog, clip, plan_rng, think
from agents.runtime import AgentContext

THEMES = ("a lighthouse keeper", "a lost robot", "two rival chefs", "a comet", "an old map", "a quiet town")


def run(agent: AgentContext) -> dict:
    rng = plan_rng(agent)
    plan = Plan.from_params(agent, steps=3 + rng.randint(0, 2))
    context_chars = int(agent.params.get("context_chars", 600))
    log = RequestLog(agent)
    theme = rng.choice(THEMES)
    story = ""
    versions = []
    for chapter in range(plan.steps):
        prompt = f"Write chapter {chapter + 1} of a story about {theme}.\nStory so far:\n{clip(story, context_chars)}"
        text = log.generate(prompt, plan.tokens(rng))["text"]
        story += f"\n[{chapter + 1}] {text}"
        put = agent.client.storage_put(key=f"{agent.name}/chapter-{chapter + 1}", value=text)
        versions.append(put["version"])
        think(plan, rng)
    stored = [agent.client.storage_get(key=f"{agent.name}/chapter-{c + 1}")["value"] for c in range(plan.steps)]
    return log.result(theme=theme, chapters=plan.steps, versions=versions,
                      chapters_read_back=sum(1 for s in stored if isinstance(s, str)))
