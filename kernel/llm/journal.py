"""The request journal: every accepted llm.generate, so that a kernel started after a crash on
the same state dir resumes it and its agent can re-attach (llm.attach).

STATE/journal.lmdb, sub-databases (keys are request ids, UTF-8):
  requests  rid -> {agent, args (validated, prompt included), checkpoint: [first_key, number,
            tokens] | nil}: written when the call is accepted, updated when a checkpoint is
            confirmed (before the older one is freed), deleted when the request leaves;
  tokens    rid + b"\\0" + u32 offset -> the tokens produced from that offset (uint32 LE):
            appended before they are streamed, so the journal knows every token an agent saw;
  replies   rid -> {reply: {ok, result | error}, stream, finished_unix}: the reply of a request
            that left while its agent was away (or just before a crash), kept for `grace_s` so
            that the agent can still fetch it with llm.attach.
Written without fsync (sync=False): a committed write is in the OS page cache, so it survives
the death of the kernel process (what recovery is for), not a crash of the machine.
Owner: the kernel main thread (LLMService).
"""

from __future__ import annotations

import struct
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from kernel.services.lmdb_store import LmdbStore, WriteOp
from syscalls.codec import pack, unpack

DBS = ("requests", "tokens", "replies")


@dataclass(slots=True)
class Journaled:
    """A request found in the journal at start-up."""

    rid: str
    agent: str
    args: dict
    checkpoint: tuple[str, int, int] | None  # (first worker-side key, number, tokens at it)
    delivered: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ParkedReply:
    """A reply waiting for its agent to attach."""

    reply: dict  # {ok: true, result} or {ok: false, error: {code, message}}
    stream: bool  # the call asked for stream messages
    finished_unix: float


class Journal:
    def __init__(self, path: Path) -> None:
        self.store = LmdbStore(path, DBS, sync=False)
        self._lengths: dict[str, int] = {}  # rid -> tokens journaled so far

    # ---- writes ----
    def accept(self, rid: str, agent: str, args: dict) -> None:
        """A new request (anything an earlier one with this id left is replaced)."""
        ops: list[WriteOp] = [("requests", rid.encode(), pack({"agent": agent, "args": args, "checkpoint": None})),
                              ("replies", rid.encode(), None)]
        ops += [("tokens", key, None) for key, _ in self.store.scan("tokens", _token_prefix(rid))]
        self.store.write(ops)
        self._lengths[rid] = 0

    def produced(self, tokens: dict[str, list[int]]) -> None:
        """Append each request's new tokens (one transaction)."""
        ops: list[WriteOp] = []
        for rid, new in tokens.items():
            if rid in self._lengths and new:
                start = self._lengths[rid]
                ops.append(("tokens", _token_key(rid, start), array("I", new).tobytes()))
                self._lengths[rid] = start + len(new)
        if ops:
            self.store.write(ops)

    def checkpointed(self, rid: str, first_key: str, number: int, tokens: int) -> None:
        raw = self.store.get("requests", rid.encode())
        if raw is not None:
            rec = unpack(raw)
            rec["checkpoint"] = [first_key, number, tokens]
            self.store.write([("requests", rid.encode(), pack(rec))])

    def leave(self, rid: str, parked: ParkedReply | None = None) -> None:
        """The request left: forget it, keeping its reply when its agent has yet to fetch it."""
        if self._lengths.pop(rid, None) is None and parked is None:
            return
        ops: list[WriteOp] = [("requests", rid.encode(), None)]
        ops += [("tokens", key, None) for key, _ in self.store.scan("tokens", _token_prefix(rid))]
        if parked is not None:
            ops.append(("replies", rid.encode(), pack({"reply": parked.reply, "stream": parked.stream,
                                                       "finished_unix": parked.finished_unix})))
        self.store.write(ops)

    def fetched(self, rid: str) -> None:
        self.store.write([("replies", rid.encode(), None)])

    def expire(self, grace_s: float, now_unix: float | None = None) -> list[str]:
        """Delete replies older than grace_s; returns their request ids."""
        cutoff = (time.time() if now_unix is None else now_unix) - grace_s
        old = [key for key, raw in self.store.scan("replies") if unpack(raw)["finished_unix"] < cutoff]
        if old:
            self.store.write([("replies", key, None) for key in old])
        return [key.decode() for key in old]

    # ---- start-up ----
    def recover(self) -> tuple[list[Journaled], dict[str, ParkedReply]]:
        """What an earlier kernel left: its requests in flight (with the tokens each produced)
        and the replies nobody fetched."""
        tokens: dict[str, list[int]] = {}
        for key, value in self.store.scan("tokens"):
            rid = key[:-5].decode()  # rid, NUL, u32 offset
            tokens.setdefault(rid, []).extend(array("I", value))
        found = []
        for key, raw in self.store.scan("requests"):
            rid, rec = key.decode(), unpack(raw)
            cp = rec["checkpoint"]
            found.append(Journaled(rid, rec["agent"], rec["args"], tuple(cp) if cp else None, tokens.get(rid, [])))
            self._lengths[rid] = len(found[-1].delivered)
        replies = {key.decode(): ParkedReply(rec["reply"], rec["stream"], rec["finished_unix"])
                   for key, rec in ((k, unpack(v)) for k, v in self.store.scan("replies"))}
        return found, replies

    def counts(self) -> dict[str, int]:
        return {db: self.store.count(db) for db in DBS}

    def close(self) -> None:
        self.store.close()


def _token_prefix(rid: str) -> bytes:
    return rid.encode() + b"\0"


def _token_key(rid: str, offset: int) -> bytes:
    return _token_prefix(rid) + struct.pack(">I", offset)
