"""Step-wise decoder (never `model.generate`): prefill, then one-token steps over a DynamicCache.

A step chooses token(s) from the request's pending logits (greedy, seeded sampling or beam
search), appends them, checks stops, then forwards the new token(s) to get the next pending
logits (skipped once finished). Because the pending logits live in the state, a decode cut at
any step and restored from an exact snapshot continues bit-identically (at batch size 1, same
thread count, dtype and attention implementation). Batching: see workers/batch.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import torch

from syscalls.errors import ErrorCode, SyscallError
from workers.batch import DecodeBatch
from workers.beam import beam_choose
from workers.kvcache import cache_layers, make_cache
from workers.model import LoadedModel
from workers.params import GenParams
from workers.picking import Pick, draws_this_step, pick_tokens
from workers.sampling import new_generator
from workers.state import SeqState
from workers.stops import stop_reason


class Decoder:
    """Owned by one worker process; stateless apart from the model it wraps."""

    def __init__(self, loaded: LoadedModel, record_scores: bool = False):
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.eos_id = loaded.info.eos_token_id
        self.record_scores = record_scores
        self.fingerprint = dict(loaded.info.fingerprint)  # what a snapshot must match to restore here

    def describe(self) -> dict[str, Any]:
        """Engine facts for the ready message and sched.stats (the generic path pads batches)."""
        return {"engine": "hf", "batch_invariant": False, "row_block": None, "kv_pool": None}

    # -- KV ownership (the native decoder keeps KV in pool blocks instead) -----------------
    def release(self, state: SeqState) -> None:
        state.cache = None

    def kv_layers(self, state: SeqState) -> list[tuple[torch.Tensor, torch.Tensor]]:
        assert state.cache is not None, "no resident KV"
        return cache_layers(state.cache)

    def cache_from_layers(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        return make_cache(layers, self.model.config)

    def check_integrity(self, states: list[SeqState]) -> None:
        assert all(s.cache is not None for s in states)

    # -- admission -------------------------------------------------------------------------
    def check_prompt(self, prompt_ids: list[int], params: GenParams) -> None:
        info = self.loaded.info
        if not prompt_ids:
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, "prompt_ids is empty")
        if any(not isinstance(t, int) or not 0 <= t < info.vocab_size for t in prompt_ids):
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"prompt id outside [0, {info.vocab_size})")
        needed = len(prompt_ids) + params.max_new_tokens
        if needed > info.max_context:
            raise SyscallError(
                ErrorCode.CONTEXT_TOO_LONG,
                f"prompt {len(prompt_ids)} + max_new_tokens {params.max_new_tokens} = {needed}"
                f" > model window {info.max_context}",
            )

    def prefill(self, rid: Any, prompt_ids: list[int], params: GenParams) -> SeqState:
        self.check_prompt(prompt_ids, params)
        cache, logits = self.forward_full([list(prompt_ids)])
        return self.new_state(rid, prompt_ids, params, cache, logits)

    def new_state(self, rid: Any, prompt_ids: list[int], params: GenParams, cache: Any, logits: torch.Tensor) -> SeqState:
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(4), "little")
        return SeqState(
            rid=rid, params=params, prompt_ids=list(prompt_ids), seqs=[[]], pending_logits=logits,
            cache=cache, seed=seed,
            generator=None if params.is_greedy or params.is_beam else new_generator(seed, self.device),
            beam_scores=torch.zeros(1, device=self.device) if params.is_beam else None,
            step_scores=[] if self.record_scores else None,
        )

    def reprefill(self, state: SeqState) -> torch.Tensor:
        """Rebuild the cache from prompt + generated ids (per row); returns fresh logits.

        Not bit-exact against the original cache (~1e-6): used for drop-mode restores.
        """
        cache, logits = self.forward_full([state.prompt_ids + seq for seq in state.seqs])
        state.cache = cache
        return logits

    @torch.no_grad()
    def forward_full(self, rows: list[list[int]]) -> tuple[Any, torch.Tensor]:
        """Prefill equal-length rows; returns (cache, last-position logits [rows, vocab] fp32)."""
        ids = torch.tensor(rows, dtype=torch.long, device=self.device)
        cache, logits = self.loaded.forward(ids, logits_to_keep=1)
        return cache, logits[:, -1, :].float().contiguous()

    # -- stepping --------------------------------------------------------------------------
    def decode(
        self, states: list[SeqState], steps: int, on_step: Callable[[], None] | None = None,
        prefill_only: list[SeqState] | None = None,
    ) -> None:
        """Advance `states` (one batch) by up to `steps` steps; finished ones drop out.
        (`prefill_only`: states whose prefill is pending; the generic path prefills at load.)"""
        live = [s for s in states if not s.is_finished]
        if not live or steps <= 0:
            return
        batch = DecodeBatch(live, self.loaded)
        for _ in range(steps):
            if not batch.step(self.choose_all):
                break
            if on_step is not None:
                on_step()
        batch.close()

    def choose_all(self, states: list[SeqState]) -> list[tuple[list[int], list[int]] | None]:
        """`choose` for each of `states` (one step of a batch): the single-row picks are made
        together (workers/picking.py: one host sync for the batch), beams per request."""
        drawing = [s for s in states if draws_this_step(s)]
        picks = dict(zip(map(id, drawing), pick_tokens(drawing), strict=True))
        return [self.choose(s, picks.get(id(s))) for s in states]

    def choose(self, state: SeqState, pick: Pick | None = None) -> tuple[list[int], list[int]] | None:
        """One step's choice for `state`: (source rows, tokens) to forward, or None if finished.
        `pick`: the batch's pick for this single-row state (made here alone when absent)."""
        if state.step_scores is not None:
            state.step_scores.append(step_digest(state))
        state.num_steps += 1
        tokenizer = self.loaded.tokenizer
        if state.params.is_beam:
            return beam_choose(state, self.eos_id, tokenizer)
        seq = state.seqs[0]
        if len(seq) >= state.params.max_new_tokens:
            state.finish("length", seq)
            return None
        pick = pick or pick_tokens([state])[0]
        seq.append(pick.token)
        if state.params.logprobs:
            assert pick.logprob is not None
            state.token_logprobs.append(pick.logprob)
        reason = stop_reason(seq, state.params, self.eos_id, tokenizer)
        if reason is None and len(seq) >= state.params.max_new_tokens:
            reason = "length"
        if reason is not None:
            state.finish(reason, seq)
            return None
        return [0], [seq[-1]]


def step_digest(state: SeqState) -> str:
    """Digest of the exact bits a step decides from: pending logits (+ beam scores)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(state.pending_logits.cpu().numpy().tobytes())
    if state.beam_scores is not None:
        digest.update(state.beam_scores.cpu().numpy().tobytes())
    return digest.hexdigest()
