"""An llm.generate call as the kernel holds it (Submission), and the one place its reply is built
from the scheduler's request: result, streamed chunks, and the replay check after a worker died.
Pure (no sockets); owner: LLMService (kernel main thread)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from kernel.context import Deferred
from kernel.llm.prompt import PromptCodec
from kernel.scheduler import SeqRequest
from syscalls.digests import unpack_float32


@dataclass(slots=True)
class Submission:
    """A validated llm.generate call, possibly waiting for the model to load."""

    rid: str
    agent: str
    args: dict
    arrival_s: float
    reply: Deferred | None  # None for internal requests (summaries)
    on_done: Any = None  # internal continuation: fn(result dict) for summaries
    prompt_ids: list[int] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)  # tokens it has produced (journaled before streamed)
    cursor: int = 0  # tokens its current attempt has produced (< len(delivered) while replaying)
    streamed: int = 0  # tokens of `delivered` sent to `reply` as stream messages
    journaled: bool = False  # an agent's call, kept in the journal until it leaves
    resume: tuple[str, int, int] | None = None  # recovered from the journal: its checkpoint (first key, number, tokens)

    @property
    def is_detached(self) -> bool:
        """Recovered from the journal, its agent not yet re-attached (llm.attach)."""
        return self.journaled and self.reply is None

    @property
    def streams(self) -> bool:
        """Stream chunks go out (never for beam search: its tokens are known only at the end)."""
        return self.reply is not None and self.args["stream"] and self.args["num_beams"] < 2


class LiveRequests:
    """Submissions in flight by request id, indexed by agent, so that an agent's exit costs its
    own requests, not a scan of everyone's."""

    def __init__(self) -> None:
        self._subs: dict[str, Submission] = {}
        self._by_agent: dict[str, dict[str, Submission]] = {}

    def add(self, sub: Submission) -> None:
        self._subs[sub.rid] = sub
        self._by_agent.setdefault(sub.agent, {})[sub.rid] = sub

    def pop(self, rid: str) -> Submission | None:
        sub = self._subs.pop(rid, None)
        if sub is not None:
            mine = self._by_agent[sub.agent]
            del mine[rid]
            if not mine:
                del self._by_agent[sub.agent]
        return sub

    def get(self, rid: str) -> Submission | None:
        return self._subs.get(rid)

    def of_agent(self, agent: str) -> list[Submission]:
        return list(self._by_agent.get(agent, {}).values())

    def counts(self) -> dict[str, int]:
        """Requests in flight per agent."""
        return {agent: len(subs) for agent, subs in self._by_agent.items()}

    def values(self) -> list[Submission]:
        return list(self._subs.values())

    def __contains__(self, rid: object) -> bool:
        return rid in self._subs

    def __iter__(self):
        return iter(list(self._subs))

    def __len__(self) -> int:
        return len(self._subs)


def take_slice(sub: Submission, token_ids: list[int]) -> tuple[list[int], str | None]:
    """A slice's tokens, checked against what the request already produced (a replay after its
    worker or the kernel died must make the same ones). Returns (the new tokens; a divergence)."""
    start, sub.cursor = sub.cursor, sub.cursor + len(token_ids)
    known = sub.delivered[start : start + len(token_ids)]
    if token_ids[: len(known)] != known:
        return [], f"the replay of {sub.rid} made {token_ids[: len(known)]} at token {start}, not {known}"
    fresh = token_ids[len(known):]
    sub.delivered += fresh
    return fresh, None


def unstreamed(sub: Submission) -> list[int]:
    """Tokens owed to the agent as stream messages (none unless it streams); marks them sent."""
    if not sub.streams or sub.streamed >= len(sub.delivered):
        return []
    start, sub.streamed = sub.streamed, len(sub.delivered)
    return sub.delivered[start:]


def generate_result(sub: Submission, req: SeqRequest, codec: PromptCodec) -> tuple[dict | None, str | None]:
    """The llm.generate result of a FINISHED request, or (None, why) if its output is not the one
    it had already produced (a replay that diverged)."""
    ids = list(req.output_ids or [])
    if sub.args["num_beams"] < 2 and ids[: len(sub.delivered)] != sub.delivered:
        return None, f"{sub.rid} finished with {len(ids)} tokens that differ from the {len(sub.delivered)} it produced before"
    text = codec.decode(ids)
    if req.finish_reason == "stop" and sub.args["stop"]:
        text = trim_at_stop(text, sub.args["stop"])
    result = {"request_id": sub.rid, "text": text, "token_ids": ids, "finish_reason": req.finish_reason,
              "prompt_tokens": len(sub.prompt_ids), "timing": req.timeline.timing()}
    if sub.args["logprobs"]:
        result["logprobs"] = unpack_float32(req.output_logprobs or b"")
    return result, None


def full_request_id(agent: str, label: str) -> str:
    """Request ids are '<agent>/<label>'; a label that already carries the prefix keeps it."""
    return label if label.startswith(f"{agent}/") else f"{agent}/{label}"


def trim_at_stop(text: str, stops: list[str]) -> str:
    """Text up to the earliest stop string (token ids keep the tokens that produced it)."""
    cuts = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


def stable_seed(rid: str) -> int:
    return int.from_bytes(hashlib.blake2b(rid.encode(), digest_size=8).digest(), "little") >> 1
