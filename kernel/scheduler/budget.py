"""KV accounting per worker: a ledger of bytes reserved by the requests resident there.

Owned by the Scheduler. An entry exists exactly for the requests whose `residency` is the
worker; a READY request holds its current footprint, a RUNNING one its footprint after the slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.scheduler.request import SeqRequest


def held_tokens(req: SeqRequest, num_tokens: int) -> int:
    """Token slots a row of `num_tokens` holds: whole blocks of the worker's paged pool."""
    block = req.kv_block_tokens
    return -(-num_tokens // block) * block


def kv_footprint_bytes(req: SeqRequest, num_steps: int, kv_bytes_per_token: int) -> int:
    """KV bytes of `req` after decoding `num_steps` more steps (capped at max_new_tokens)."""
    num_tokens = req.num_tokens + min(num_steps, req.num_remaining)
    return held_tokens(req, num_tokens) * req.num_beams * kv_bytes_per_token


def max_footprint_bytes(req: SeqRequest, kv_bytes_per_token: int) -> int:
    return held_tokens(req, req.prompt_len + req.max_new_tokens) * req.num_beams * kv_bytes_per_token


@dataclass(slots=True)
class KVBudget:
    budget_bytes: int | None  # None = unlimited
    reserved: dict[str, int] = field(default_factory=dict)
    used_bytes: int = 0

    def set(self, rid: str, num_bytes: int) -> None:
        self.used_bytes += num_bytes - self.reserved.get(rid, 0)
        self.reserved[rid] = num_bytes

    def release(self, rid: str) -> None:
        self.used_bytes -= self.reserved.pop(rid, 0)

    def fits(self, num_bytes: int) -> bool:
        return self.budget_bytes is None or num_bytes <= self.budget_bytes

    def check_integrity(self, wid: int) -> None:
        assert self.used_bytes == sum(self.reserved.values()), f"worker {wid}: ledger sum drifted"
        assert self.fits(self.used_bytes), (
            f"worker {wid}: {self.used_bytes} KV bytes resident > budget {self.budget_bytes}"
        )
