"""llm.generate results -> OpenAI response bodies and stream chunks (pure; docs/gateway.md).

Token strings in `logprobs` are `token_id:<id>` (the gateway has no tokenizer; vLLM's
`--return-tokens-as-token-ids` spells them the same way). aiosim's own figures go under `aiosim`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from agents.gateway.requests import Generation

FINISH = {"length": "length", "stop": "stop", "eos": "stop"}
TIMING = ("waiting_s", "queued_s", "turnaround_s", "ttft_s", "preemptions", "num_slices")
OBJECT = {"chat": ("chat.completion", "chat.completion.chunk"), "completion": ("text_completion", "text_completion")}


@dataclass(slots=True)
class Envelope:
    """What every body and chunk of one HTTP request shares."""

    gen: Generation
    response_id: str
    agent: str
    created: int = field(default_factory=lambda: int(time.time()))

    def head(self, is_chunk: bool) -> dict:
        return {"id": self.response_id, "object": OBJECT[self.gen.kind][is_chunk], "created": self.created,
                "model": self.gen.model}


def usage(results: list[dict]) -> dict:
    prompt = results[0]["prompt_tokens"] if results else 0
    completion = sum(len(r["token_ids"]) for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def aiosim_fields(env: Envelope, results: list[dict]) -> dict:
    """The `aiosim` key: the agent, and per choice its request id and scheduling figures."""
    return {"agent": env.agent,
            "requests": [{"request_id": r["request_id"], **{k: r["timing"].get(k) for k in TIMING}} for r in results]}


def logprobs_body(gen: Generation, result: dict) -> dict | None:
    if not gen.logprobs:
        return None
    tokens = [f"token_id:{t}" for t in result["token_ids"]]
    if gen.kind == "chat":
        return {"content": [{"token": tok, "logprob": lp, "bytes": None, "top_logprobs": []}
                            for tok, lp in zip(tokens, result["logprobs"], strict=True)], "refusal": None}
    return {"tokens": tokens, "token_logprobs": result["logprobs"], "top_logprobs": None, "text_offset": None}


def choice(gen: Generation, index: int, result: dict) -> dict:
    body = {"index": index, "logprobs": logprobs_body(gen, result), "finish_reason": FINISH[result["finish_reason"]]}
    if gen.kind == "chat":
        body["message"] = {"role": "assistant", "content": result["text"], "refusal": None}
    else:
        body["text"] = result["text"]
    return body


def full_response(env: Envelope, results: list[dict]) -> dict:
    return {**env.head(False), "choices": [choice(env.gen, i, r) for i, r in enumerate(results)],
            "usage": usage(results), "aiosim": aiosim_fields(env, results)}


def delta_chunk(env: Envelope, index: int, text: str, *, result: dict | None = None, is_first: bool = False) -> dict:
    """A content chunk; with `result` the choice's last one (finish_reason, all its logprobs)."""
    body: dict = {"index": index, "logprobs": None, "finish_reason": None}
    if env.gen.kind == "chat":
        body["delta"] = {"role": "assistant", "content": text} if is_first else {"content": text}
    else:
        body["text"] = text
    if result is not None:
        body["finish_reason"] = FINISH[result["finish_reason"]]
        body["logprobs"] = logprobs_body(env.gen, result)
    return {**env.head(True), "choices": [body]}


def usage_chunk(env: Envelope, results: list[dict]) -> dict:
    """The last chunk: no choices, the usage (with include_usage) and the `aiosim` key."""
    chunk = {**env.head(True), "choices": [], "aiosim": aiosim_fields(env, results)}
    if env.gen.include_usage:
        chunk["usage"] = usage(results)
    return chunk


@dataclass(slots=True)
class TextStream:
    """Streamed text of one choice: deltas whose concatenation is the final text. Held back: a
    trailing partial character (U+FFFD from a split multi-byte sequence) and, with stop strings,
    anything that could still turn out to be part of one (the final text cuts a stop string off)."""

    stops: list[str]
    received: str = ""
    num_sent: int = 0

    def add(self, text: str) -> str:
        self.received += text
        safe = len(self.received.rstrip("\ufffd"))
        if self.stops:
            safe -= max(map(len, self.stops))
            found = [i for i in (self.received.find(s) for s in self.stops) if i >= 0]
            safe = min([safe, *found])
        if safe <= self.num_sent:
            return ""
        out, self.num_sent = self.received[self.num_sent: safe], safe
        return out

    def finish(self, final: str) -> str:
        """The rest of the final text (the kernel's reply is authoritative)."""
        return final[len(os.path.commonprefix([self.received[: self.num_sent], final])):]
