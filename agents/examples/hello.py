"""hello: the smallest real agent: ping, remember, recall, ask the LLM once (if --param llm=true)."""

from __future__ import annotations

from agents.runtime import AgentContext


def run(agent: AgentContext) -> dict:
    k = agent.client
    k.proc_ping(payload=agent.name)
    k.mem_put(key="greeting", value=f"hello from {agent.name}")
    recalled = k.mem_get(key="greeting")["value"]
    result: dict = {"recalled": recalled}
    if agent.params.get("llm"):
        reply = k.llm_generate(prompt=f"Hello, I am {agent.name}.", max_new_tokens=int(agent.params.get("tokens", 8)),
                               request_id=agent.request_id(0))
        result["output_tokens"] = len(reply["token_ids"])
    return result
