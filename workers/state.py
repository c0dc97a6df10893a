"""SeqState: everything one resident request needs to take its next decode step.

Owned by the WorkerEngine of one worker process. Invariant while resident and not finished:
`pending_logits.shape[0] == len(seqs) == rows of every cache tensor`, and the cache holds
`len(prompt_ids) + len(seqs[0])` positions (the last generated token has been forwarded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from workers.blocks import PagedKV
from workers.kvcache import cache_bytes
from workers.params import GenParams


@dataclass(slots=True)
class Hypothesis:
    """A finished beam: `score` = sum_logprob / len(ids) ** length_penalty."""

    score: float
    sum_logprob: float
    ids: list[int]
    reason: str


@dataclass(slots=True)
class SeqState:
    rid: Any
    params: GenParams
    prompt_ids: list[int]
    seqs: list[list[int]]  # generated ids per running row (one row unless beam search)
    pending_logits: torch.Tensor  # [rows, vocab] fp32, not yet consumed by a step
    cache: DynamicCache | PagedKV | None  # PagedKV on the native engine
    seed: int
    generator: torch.Generator | None = None  # sampling only
    beam_scores: torch.Tensor | None = None  # [rows] fp32 sum of logprobs (beam only)
    finished_hyps: list[Hypothesis] = field(default_factory=list)
    num_steps: int = 0
    token_logprobs: list[float] = field(default_factory=list)  # float32 values, per generated token (logprobs only)
    pending_prefill: int = 0  # prompt tokens not yet forwarded (native engine: prefill in chunks)
    finish_reason: str | None = None
    output_ids: list[int] | None = None
    step_scores: list[str] | None = None  # per-step digests, only when recording (tests)

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def num_rows(self) -> int:
        return len(self.seqs)

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.seqs[0] if self.seqs else [])

    @property
    def kv_bytes(self) -> int:
        if isinstance(self.cache, PagedKV):
            return self.cache.nbytes
        return cache_bytes(self.cache)

    def finish(self, reason: str, output_ids: list[int]) -> None:
        self.finish_reason = reason
        self.output_ids = list(output_ids)
        self.cache = None
