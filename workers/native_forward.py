"""NativeForward: one batch-invariant forward pass over segments of many requests' rows.

A segment is one row's new tokens (a decode token, or one prefill chunk) at its positions; its
KV goes into the pool slots its block table holds. What keeps a row's bits independent of the
batch (torch CPU facts measured on this machine kind, docs/architecture.md):
- every row-wise op (embedding, norms, linears, rotary, activations, residuals) runs on a row
  count padded to a multiple of ROW_BLOCK (>= ROW_BLOCK), so each linear stays in one kernel class
  and no elementwise loop ever ends in a scalar tail;
- attention is our own math over each row's own keys, gathered with zero padding to a multiple of
  KEY_BLOCK: scores and weighted sums are matmuls (zero padding along the reduction does not move
  bits), the softmax max is order-free, the denominator is a matmul with ones;
- one-token segments share one batched attention; longer (prefill) segments each get their own,
  and a prompt is always cut into chunks at the same multiples of the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workers.kvpool import KVPool
from workers.native_arch import Arch, linear

ROW_BLOCK = 16
KEY_BLOCK = 32


@dataclass(slots=True)
class Segment:
    table: list[int]  # the row's blocks, reserved for every position it writes
    start: int  # position of the first new token
    token_ids: list[int]
    want_logits: bool = True  # logits of the last new token


def round_up(n: int, block: int) -> int:
    return max(block, -(-n // block) * block)


class NativeForward:
    """Owned by one worker; reads and writes its KVPool."""

    def __init__(self, arch: Arch, pool: KVPool, device: torch.device, row_block: int = ROW_BLOCK):
        self.arch = arch
        self.row_block = row_block
        self.pool = pool
        self.device = device
        self.scale = arch.head_dim ** -0.5
        self.group = arch.num_heads // arch.kv_heads

    def _long(self, values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def forward(self, segments: list[Segment]) -> torch.Tensor:
        """Run every segment; returns fp32 logits [segments wanting logits, vocab], in order."""
        ids, positions, slots = [], [], []
        for seg in segments:
            ids += seg.token_ids
            positions += range(seg.start, seg.start + len(seg.token_ids))
            slots += self.pool.blocks.slots(seg.table, seg.start, seg.start + len(seg.token_ids))
        num_rows = len(ids)
        padded = round_up(num_rows, self.row_block)
        ids_t = self._long(ids + [0] * (padded - num_rows))
        pos_t = self._long(positions + [0] * (padded - num_rows))
        slots_t = self._long(slots)
        plan = self._attention_plan(segments)
        x = self.arch.embed_tokens(ids_t, pos_t)
        rope = self.arch.rope_at(pos_t)
        for index, layer in enumerate(self.arch.layers):
            h = self.arch.norm(x, layer.norm1)
            attn = self._attention(index, linear(h, layer.qkv), rope, slots_t, num_rows, plan)
            x = x + linear(attn, layer.out)
            x = x + self.arch.mlp(self.arch.norm(x, layer.norm2), layer)
        return self._logits(x, segments)

    def _logits(self, x: torch.Tensor, segments: list[Segment]) -> torch.Tensor:
        rows, end = [], 0
        for seg in segments:
            end += len(seg.token_ids)
            if seg.want_logits:
                rows.append(end - 1)
        if not rows:
            return torch.empty(0, self.arch.lm_head.shape[0], device=self.device)
        picked = x.index_select(0, self._long(rows + [rows[-1]] * (round_up(len(rows), self.row_block) - len(rows))))
        logits = linear(self.arch.norm(picked, self.arch.final_norm), (self.arch.lm_head, None))
        return logits[: len(rows)].float()

    # -- attention -------------------------------------------------------------------------
    def _attention_plan(self, segments: list[Segment]) -> dict:
        """Which rows take the batched one-token path, which segments their own, and the key
        slots (zero-padded) each reads."""
        blocks = self.pool.blocks
        singles, chunks, row = [], [], 0
        for seg in segments:
            n = len(seg.token_ids)
            if n == 1:
                singles.append((row, seg))
            else:
                chunks.append((row, seg))
            row += n
        plan: dict = {"singles": None, "chunks": []}
        if singles:
            plan["singles"] = self._singles_plan(singles)
        for start_row, seg in chunks:
            end = seg.start + len(seg.token_ids)
            width = round_up(end, KEY_BLOCK)
            own = blocks.slots(seg.table, 0, end)
            index = self._long(own + [self.pool.null_slot] * (width - end))
            query_pos = torch.arange(seg.start, end, device=self.device)[:, None]
            hidden = torch.arange(width, device=self.device)[None, :] > query_pos  # causal + padding
            plan["chunks"].append((start_row, len(seg.token_ids), index, hidden[None, None]))
        return plan

    def _singles_plan(self, singles: list[tuple[int, Segment]]) -> tuple:
        """Key slots [B * width] (each row's own, then the zero slot) and the padding mask."""
        size = self.pool.block_size
        width = round_up(max(s.start + 1 for _, s in singles), KEY_BLOCK)
        num_cols = -(-width // size)
        null_block = self.pool.null_slot // size
        tables = self._long([s.table[:num_cols] + [null_block] * (num_cols - len(s.table)) for _, s in singles])
        offsets = torch.arange(size, device=self.device)
        slots = (tables[:, :, None] * size + offsets).view(len(singles), -1)[:, :width]
        lengths = self._long([s.start + 1 for _, s in singles])
        pad = torch.arange(width, device=self.device)[None, :] >= lengths[:, None]
        index = torch.where(pad, self.pool.null_slot, slots).reshape(-1)
        return self._long([r for r, _ in singles]), index, pad[None, :, None, :], width

    def _attention(
        self, layer: int, qkv: torch.Tensor, rope: tuple | None, slots: torch.Tensor, num_rows: int, plan: dict
    ) -> torch.Tensor:
        arch, rows = self.arch, qkv.shape[0]
        heads = arch.num_heads + arch.kv_heads
        qk = arch.rotate(qkv[:, : heads * arch.head_dim].reshape(rows, heads, arch.head_dim), rope)
        q = qk[:, : arch.num_heads] * self.scale
        k = qk[:, arch.num_heads :]
        v = qkv[:, heads * arch.head_dim :].reshape(rows, arch.kv_heads, arch.head_dim)
        self.pool.write(layer, slots, k[:num_rows], v[:num_rows])
        out = torch.zeros(rows, arch.num_heads * arch.head_dim, dtype=qkv.dtype, device=self.device)
        if plan["singles"] is not None:
            row_index, key_index, pad, width = plan["singles"]
            out.index_copy_(0, row_index, self._attend_singles(layer, q.index_select(0, row_index), key_index, pad, width))
        for start_row, n, key_index, hidden in plan["chunks"]:
            out[start_row : start_row + n] = self._attend_chunk(layer, q[start_row : start_row + n], key_index, hidden)
        return out

    def _attend_singles(self, layer: int, q: torch.Tensor, key_index: torch.Tensor, pad: torch.Tensor, width: int) -> torch.Tensor:
        """q [B, heads, d] (one query each) over their own keys: [B, heads * d]."""
        arch, batch = self.arch, q.shape[0]
        keys, values = self.pool.gather(layer, key_index)  # [kv_heads, B * width, d]
        keys = keys.view(arch.kv_heads, batch, width, arch.head_dim)
        values = values.view(arch.kv_heads, batch, width, arch.head_dim)
        q = q.view(batch, arch.kv_heads, self.group, arch.head_dim).permute(1, 0, 2, 3).contiguous()
        out = self._softmax_weighted(q, keys, values, pad)  # [kv_heads, B, group, d]
        return out.permute(1, 0, 2, 3).reshape(batch, arch.num_heads * arch.head_dim)

    def _attend_chunk(self, layer: int, q: torch.Tensor, key_index: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """q [n, heads, d] of one prefill chunk over its own keys, causal: [n, heads * d]."""
        arch, n = self.arch, q.shape[0]
        keys, values = self.pool.gather(layer, key_index)  # [kv_heads, width, d]
        q = q.view(n, arch.kv_heads, self.group, arch.head_dim).permute(1, 2, 0, 3).contiguous()
        out = self._softmax_weighted(q, keys[:, None], values[:, None], hidden)  # [kv_heads, group, n, d]
        return out.permute(2, 0, 1, 3).reshape(n, arch.num_heads * arch.head_dim)

    @staticmethod
    def _softmax_weighted(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(q, keys.transpose(-1, -2)).masked_fill_(hidden, float("-inf"))
        weights = torch.exp(scores - scores.amax(-1, keepdim=True))
        ones = torch.ones(weights.shape[-1], 1, dtype=weights.dtype, device=weights.device)
        return torch.matmul(weights, values) / torch.matmul(weights, ones)
