"""NativeDecoder: the step-wise decoder over the worker's paged KV pool, batch-invariant.

Same choices as the generic Decoder (greedy, seeded sampling, beams, stops; the pending logits
live in the state), but the KV lives in pool blocks (state.cache is a PagedKV) and every step is
one NativeForward over all live rows: requests join and leave at any step without any other
request's KV being copied. A prompt is prefilled in chunks cut at multiples of PREFILL_CHUNK, the
same cut whatever else runs, so a request's bits never depend on its company.

Contract: owned by one worker process; blocks are released by `release` (the engine calls it
when a request finishes, is evicted or freed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from syscalls.errors import ErrorCode, SyscallError
from workers.blocks import PagedKV, PoolFull
from workers.decoder import Decoder
from workers.invariance import find_row_block
from workers.kvpool import DEFAULT_POOL_BYTES, KVPool, PoolShape
from workers.model import LoadedModel
from workers.native_arch import Arch, extract
from workers.native_forward import ROW_BLOCK, NativeForward, Segment
from workers.params import GenParams
from workers.state import SeqState

PREFILL_CHUNK = 256  # prompts are cut at multiples of this, always
STEP_TOKENS = 512  # token budget of one forward (decode rows + prefill chunks); >= one chunk
LayerKV = tuple[torch.Tensor, torch.Tensor]


def pool_exhausted(exc: PoolFull) -> SyscallError:
    return SyscallError(ErrorCode.QUOTA_EXCEEDED, f"KV pool: {exc}")


class NativeDecoder(Decoder):
    def __init__(self, loaded: LoadedModel, pool_bytes: int = DEFAULT_POOL_BYTES, record_scores: bool = False):
        super().__init__(loaded, record_scores=record_scores)
        self.arch: Arch = extract(loaded.model, loaded.info.max_context)
        dtype = self.arch.embed.dtype
        self.pool = KVPool(PoolShape(len(self.arch.layers), self.arch.kv_heads, self.arch.head_dim, dtype), pool_bytes, self.device)
        found = find_row_block(self._linears(), self._widths())
        self.is_batch_invariant = found is not None
        self.row_block = found or ROW_BLOCK
        self.native = NativeForward(self.arch, self.pool, self.device, self.row_block)
        self.fingerprint = dict(self.fingerprint, attn_implementation="aiosim-native", row_block=self.row_block)

    def _linears(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        out = [(self.arch.lm_head, None)]
        for layer in self.arch.layers:
            out += [layer.qkv, layer.out, layer.up, layer.down]
        return out

    def _widths(self) -> list[int]:
        return sorted({w.shape[1] for w, _ in self._linears()[1:]} | {self.arch.embed.shape[1]} | {self.arch.layers[0].up[0].shape[1] // 2})

    def describe(self) -> dict[str, Any]:
        """Engine facts for the ready message and sched.stats."""
        return {"engine": "native", "batch_invariant": self.is_batch_invariant, "row_block": self.row_block, "kv_pool": self.pool.capacity()}

    # -- KV ownership ----------------------------------------------------------------------
    def new_kv(self, rows: int, num_tokens: int) -> PagedKV:
        blocks = self.pool.blocks
        need = blocks.blocks_for(num_tokens)
        if need * rows > blocks.num_free:
            raise pool_exhausted(PoolFull(f"need {need * rows} KV blocks, {blocks.num_free} of {blocks.num_blocks} free"))
        return PagedKV([blocks.allocate(need) for _ in range(rows)], self.pool.block_bytes)

    def release(self, state: SeqState) -> None:
        kv = state.cache
        if isinstance(kv, PagedKV):
            for table in kv.tables:
                self.pool.blocks.release(table)
        state.cache = None

    def kv_layers(self, state: SeqState) -> list[LayerKV]:
        assert isinstance(state.cache, PagedKV), "no resident KV"
        return self.pool.read_rows(state.cache.tables, state.num_tokens)

    def cache_from_layers(self, layers: list[LayerKV]) -> PagedKV:
        rows, num_tokens = layers[0][0].shape[0], layers[0][0].shape[2]
        kv = self.new_kv(rows, num_tokens)
        self.pool.write_rows(kv.tables, layers)
        return kv

    def check_integrity(self, states: list[SeqState]) -> None:
        tables = [t for s in states if isinstance(s.cache, PagedKV) for t in s.cache.tables]
        self.pool.blocks.check_integrity(tables)

    # -- prefill ---------------------------------------------------------------------------
    def prefill(self, rid: Any, prompt_ids: list[int], params: GenParams) -> SeqState:
        """Admit: blocks for the whole prompt now; its chunks run inside the next decode steps."""
        self.check_prompt(prompt_ids, params)
        kv = self.new_kv(1, len(prompt_ids))
        state = self.new_state(rid, prompt_ids, params, kv, torch.empty(0, device=self.device))
        state.pending_prefill = len(prompt_ids)
        return state

    def forward_full(self, rows: list[list[int]]) -> tuple[PagedKV, torch.Tensor]:
        """Prefill each row (its own blocks, chunked); returns (kv, last logits [rows, vocab])."""
        kv = self.new_kv(len(rows), len(rows[0]))
        try:
            return kv, self._prefill_rows(kv, rows)
        except BaseException:
            for table in kv.tables:
                self.pool.blocks.release(table)
            raise

    def _prefill_rows(self, kv: PagedKV, rows: list[list[int]]) -> torch.Tensor:
        logits = []
        for table, ids in zip(kv.tables, rows, strict=True):
            for start in range(0, len(ids), PREFILL_CHUNK):
                chunk = ids[start : start + PREFILL_CHUNK]
                last = start + len(chunk) == len(ids)
                out = self.native.forward([Segment(table, start, chunk, want_logits=last)])
            logits.append(out[0])
        return torch.stack(logits).contiguous()

    def reprefill(self, state: SeqState) -> torch.Tensor:
        self.release(state)
        kv, logits = self.forward_full([state.prompt_ids + seq for seq in state.seqs])
        state.cache = kv
        return logits

    # -- stepping --------------------------------------------------------------------------
    def decode(
        self, states: list[SeqState], steps: int, on_step: Callable[[], None] | None = None,
        prefill_only: list[SeqState] | None = None,
    ) -> None:
        """Advance `states` together, each by up to `steps` steps; finished ones leave at once.
        Pending prefills (of `states` and of `prefill_only`) run chunk by chunk inside the same
        forwards, within STEP_TOKENS per forward; a request whose prompt is done joins the
        decoding rows at the next step (so a long prompt delays the others by one budget at most)."""
        prefilling = [s for s in [*states, *(prefill_only or [])] if s.pending_prefill]
        joining = {id(s) for s in states if s.pending_prefill}
        live = [s for s in states if not s.is_finished and not s.pending_prefill]
        left = {id(s): max(steps, 0) for s in states}
        while True:
            segments, owners = self._decode_segments(live, left)
            prefill_owners = self._prefill_segments(prefilling, STEP_TOKENS - len(segments), segments)
            live = [s for s, _ in owners]
            if not segments:
                return
            logits = self.native.forward(segments)
            offset = 0
            for state, count in [*owners, *((s, 1) for s in prefill_owners)]:
                state.pending_logits = logits[offset : offset + count]
                offset += count
            live += [s for s in prefill_owners if id(s) in joining]  # prompt done: decodes next step
            prefilling = [s for s in prefilling if s.pending_prefill]
            if on_step is not None:
                on_step()

    def _decode_segments(self, live: list[SeqState], left: dict[int, int]) -> tuple[list[Segment], list[tuple[SeqState, int]]]:
        segments: list[Segment] = []
        owners: list[tuple[SeqState, int]] = []
        stepping = [s for s in live if left[id(s)] > 0]
        caches = [s.cache for s in stepping]  # a finishing choice drops state.cache; _advance releases it
        for state, kv, choice in zip(stepping, caches, self.choose_all(stepping), strict=True):
            left[id(state)] -= 1
            picked = self._advance(state, kv, choice)
            if picked is not None:
                owners.append((state, len(picked)))
                segments += picked
        return segments, owners

    def _prefill_segments(self, prefilling: list[SeqState], budget: int, segments: list[Segment]) -> list[SeqState]:
        """Append prompt chunks (cut at multiples of PREFILL_CHUNK) within `budget` tokens, at
        least one chunk; returns the states whose last chunk is among them, in segment order."""
        completed: list[SeqState] = []
        tail: list[Segment] = []
        for state in prefilling:
            assert isinstance(state.cache, PagedKV)
            while state.pending_prefill and (budget > 0 or not (segments or tail)):
                start = len(state.prompt_ids) - state.pending_prefill
                chunk = state.prompt_ids[start : min(len(state.prompt_ids), (start // PREFILL_CHUNK + 1) * PREFILL_CHUNK)]
                state.pending_prefill -= len(chunk)
                budget -= len(chunk)
                last = state.pending_prefill == 0
                seg = Segment(state.cache.tables[0], start, chunk, want_logits=last)
                (tail if last else segments).append(seg)
                if last:
                    completed.append(state)
        segments += tail  # logits rows come after the decode rows, in `completed` order
        return completed

    def _advance(self, state: SeqState, kv: Any, picked: tuple[list[int], list[int]] | None) -> list[Segment] | None:
        """Reserve the slots of the state's chosen token(s) (`picked`) in `kv`, its blocks; None
        (blocks released) once it has finished."""
        assert isinstance(kv, PagedKV)
        if picked is None:
            state.cache = kv
            self.release(state)
            return None
        rows, tokens = picked
        if rows != list(range(len(kv.tables))):
            self._reorder(kv, rows)
        position = state.num_tokens - 1
        try:
            copies = self.pool.blocks.reserve(kv.tables, position)
        except PoolFull as exc:
            raise pool_exhausted(exc) from None
        self.pool.copy_blocks(copies)
        return [Segment(table, position, [token]) for table, token in zip(kv.tables, tokens, strict=True)]

    def _reorder(self, kv: PagedKV, rows: list[int]) -> None:
        """Beams: row j continues old row rows[j] (shared blocks, copy on write)."""
        blocks = self.pool.blocks
        fresh = [blocks.share(kv.tables[r]) for r in rows]
        for table in kv.tables:
            blocks.release(table)
        kv.tables = fresh
