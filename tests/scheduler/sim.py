"""A pure-python stand-in for worker processes and the snapshot LMDB, for scheduler tests.

It executes `plan` maps (Plan.to_wire()) and answers `plan_done` maps, so the scheduler is
tested through the wire shapes of docs/architecture.md. It is also the ground truth: it
asserts that a worker never holds more KV than its budget and tracks every LMDB snapshot.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace


@dataclass
class FakeClock:
    now: float = 0.0

    def advance(self, dt: float) -> None:
        self.now += dt


@dataclass
class SimSeq:
    rid: str
    prompt_len: int
    max_new_tokens: int
    num_beams: int
    stop_at: int | None
    generated: list[int] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return self.prompt_len + len(self.generated)

    @property
    def is_done(self) -> bool:
        n = len(self.generated)
        return n >= self.max_new_tokens or (self.stop_at is not None and n >= self.stop_at)

    def step(self) -> int:
        token = (zlib.crc32(self.rid.encode()) + len(self.generated)) % 50_000
        self.generated.append(token)
        return token


@dataclass
class Snapshot:
    seq: SimSeq
    has_kv: bool


class SimCluster:
    """Workers (by id) sharing one snapshot store; one plan executes atomically."""

    SNAPSHOT_S = 0.0005
    RESTORE_S = 0.0005

    def __init__(self, bpt: int, step_s: float, budget_bytes: int | None, clock: FakeClock):
        self.bpt, self.step_s, self.budget_bytes, self.clock = bpt, step_s, budget_bytes, clock
        self.workers: dict[int, dict[str, SimSeq]] = {}
        self.lmdb: dict[str, Snapshot] = {}
        self.stop_at: dict[str, int] = {}
        self.num_snapshots = 0
        self.num_restores = 0

    def add_worker(self, wid: int) -> None:
        self.workers[wid] = {}

    def kill(self, wid: int) -> None:
        del self.workers[wid]

    def free(self, wid: int | None, rid: str) -> None:
        """The `free` message: drop resident KV (if the worker lives) and LMDB entries under the
        key `rid` (a request's, or a checkpoint's)."""
        if wid is not None and wid in self.workers:
            self.workers[wid].pop(rid, None)
        self.lmdb.pop(rid, None)

    def kv_bytes(self, seq: SimSeq) -> int:
        return seq.num_tokens * seq.num_beams * self.bpt

    def resident_bytes(self, wid: int) -> int:
        return sum(self.kv_bytes(s) for s in self.workers[wid].values())

    def _check_budget(self, wid: int, where: str) -> None:
        used = self.resident_bytes(wid)
        assert self.budget_bytes is None or used <= self.budget_bytes, (
            f"worker {wid} holds {used} KV bytes > budget {self.budget_bytes} {where}"
        )

    def execute(self, wid: int, msg: dict) -> dict:
        assert msg["type"] == "plan"
        t_start = self.clock.now
        evicted = [self._evict(wid, e) for e in msg["evict"]]
        loaded = [self._load(wid, spec) for spec in msg["load"]]
        self._check_budget(wid, "after loads")
        results = self._decode(wid, msg["decode"], msg["steps"])
        checkpointed = [self._checkpoint(wid, c) for c in msg.get("checkpoint", [])]
        return {
            "type": "plan_done",
            "worker_id": wid,
            "plan_id": msg["plan_id"],
            "t_start": t_start,
            "t_end": self.clock.now,
            "evicted": evicted,
            "loaded": loaded,
            "results": results,
            "checkpointed": checkpointed,
            "extra_field": "tolerated",
        }

    def _evict(self, wid: int, spec: dict) -> dict:
        rid = spec["rid"]
        seq = self.workers[wid].pop(rid, None)
        if seq is None:
            return {
                "rid": rid,
                "snapshot_bytes": 0,
                "t_s": 0.0,
                "error": _err("NOT_FOUND", "not resident"),
            }
        assert rid not in self.lmdb, f"{rid}: second snapshot"
        self.lmdb[rid] = Snapshot(seq, has_kv=spec["mode"] == "swap")
        self.num_snapshots += 1
        self.clock.advance(self.SNAPSHOT_S)
        size = self.kv_bytes(seq) if spec["mode"] == "swap" else 64
        return {"rid": rid, "snapshot_bytes": size, "t_s": self.SNAPSHOT_S, "error": None}

    def _load(self, wid: int, spec: dict) -> dict:
        rid = spec["rid"]
        assert all(rid not in w for w in self.workers.values()), f"{rid}: loaded twice"
        if spec["mode"] == "prefill":
            params = spec["params"]
            seq = SimSeq(
                rid,
                len(spec["prompt_ids"]),
                params["max_new_tokens"],
                params["num_beams"],
                self.stop_at.get(rid),
            )
        else:
            if spec.get("source") is not None:  # a checkpoint: copied, kept
                snap = self.lmdb.get(spec["source"])
                snap = snap and Snapshot(replace(snap.seq, rid=rid, generated=list(snap.seq.generated)), True)
            else:
                snap = self.lmdb.pop(rid, None)  # restore consumes the snapshot
            if snap is None:
                return {
                    "rid": rid,
                    "mode": spec["mode"],
                    "error": _err("SNAPSHOT_INVALID", "no snapshot"),
                }
            seq = snap.seq
            self.num_restores += 1
            self.clock.advance(self.RESTORE_S)
        self.workers[wid][rid] = seq
        return {
            "rid": rid,
            "mode": spec["mode"],
            "prompt_tokens": seq.prompt_len,
            "kv_bytes": self.kv_bytes(seq),
            "t_s": self.RESTORE_S,
            "error": None,
        }

    def _checkpoint(self, wid: int, spec: dict) -> dict:
        seq = self.workers[wid].get(spec["rid"])
        if seq is None:
            return {"rid": spec["rid"], "error": _err("NOT_FOUND", "not resident")}
        assert spec["key"] not in self.lmdb, f"{spec['key']}: checkpoint written twice"
        self.lmdb[spec["key"]] = Snapshot(replace(seq, generated=list(seq.generated)), has_kv=True)
        self.clock.advance(self.SNAPSHOT_S)
        return {"rid": spec["rid"], "snapshot_bytes": self.kv_bytes(seq), "t_s": self.SNAPSHOT_S, "error": None}

    def _decode(self, wid: int, rids: list[str], steps: int) -> list[dict]:
        resident = self.workers[wid]
        batch = [resident[rid] for rid in rids if rid in resident]
        new_tokens: dict[str, list[int]] = {s.rid: [] for s in batch}
        num_steps: dict[str, int] = {s.rid: 0 for s in batch}
        for _ in range(steps):
            live = [s for s in batch if not s.is_done]
            if not live:
                break
            for seq in live:
                new_tokens[seq.rid].append(seq.step())
                num_steps[seq.rid] += 1
            self.clock.advance(self.step_s)
        self._check_budget(wid, "after decoding")
        return [self._seq_result(wid, rid, new_tokens, num_steps) for rid in rids]

    def _seq_result(self, wid: int, rid: str, new_tokens: dict, num_steps: dict) -> dict:
        seq = self.workers[wid].get(rid)
        if seq is None:
            return {"rid": rid, "error": _err("NOT_FOUND", "not resident")}
        out = {
            "rid": rid,
            "new_token_ids": new_tokens[rid],
            "num_steps": num_steps[rid],
            "num_tokens": seq.num_tokens,
            "kv_bytes": self.kv_bytes(seq),
            "is_finished": seq.is_done,
            "finish_reason": None,
            "output_ids": None,
            "step_scores": None,
            "error": None,
        }
        if seq.is_done:  # a finished request is freed at once, LMDB entries included
            del self.workers[wid][rid]
            self.lmdb.pop(rid, None)
            out.update(
                kv_bytes=0,
                output_ids=list(seq.generated),
                finish_reason="length" if len(seq.generated) >= seq.max_new_tokens else "stop",
            )
        return out


def _err(code: str, message: str) -> dict:
    return {"code": code, "message": message}
