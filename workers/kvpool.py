"""KVPool: one worker's preallocated paged KV cache, and the gathers its attention reads.

Per layer, keys and values are [kv_heads, num_slots, head_dim] tensors (slot = block * block_size
+ offset); one extra all-zero block at the end is the padding target of every gather and is never
handed out. Block accounting is the BlockManager's (workers/blocks.py).

Contract: owned by one worker's engine; tensors are written only for slots a row's table holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workers.blocks import BlockManager, CopyOnWrite

DEFAULT_BLOCK_SIZE = 8
DEFAULT_POOL_BYTES = 256 << 20


@dataclass(slots=True)
class PoolShape:
    num_layers: int
    kv_heads: int
    head_dim: int
    dtype: torch.dtype

    @property
    def bytes_per_token(self) -> int:
        return self.num_layers * 2 * self.kv_heads * self.head_dim * torch.tensor([], dtype=self.dtype).element_size()


class KVPool:
    def __init__(self, shape: PoolShape, pool_bytes: int, device: torch.device, block_size: int = DEFAULT_BLOCK_SIZE):
        self.shape = shape
        self.block_size = block_size
        self.block_bytes = shape.bytes_per_token * block_size
        num_blocks = pool_bytes // self.block_bytes
        if num_blocks < 1:
            raise ValueError(f"--kv-pool-bytes {pool_bytes} holds no block of {self.block_bytes} bytes")
        self.blocks = BlockManager(num_blocks, block_size)
        self.null_slot = num_blocks * block_size  # first slot of the zero block
        slots = (num_blocks + 1) * block_size
        size = (shape.kv_heads, slots, shape.head_dim)
        self.keys = [torch.zeros(size, dtype=shape.dtype, device=device) for _ in range(shape.num_layers)]
        self.values = [torch.zeros(size, dtype=shape.dtype, device=device) for _ in range(shape.num_layers)]
        self.device = device

    def capacity(self) -> dict[str, int]:
        """What the worker reports in its ready message (the kernel's KV budget derives from it)."""
        return {
            "num_blocks": self.blocks.num_blocks, "block_size": self.block_size,
            "bytes_per_token": self.shape.bytes_per_token, "pool_bytes": self.blocks.num_blocks * self.block_bytes,
        }

    def write(self, layer: int, slots: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """keys/values: [tokens, kv_heads, head_dim] for the given slots."""
        self.keys[layer].index_copy_(1, slots, keys.transpose(0, 1))
        self.values[layer].index_copy_(1, slots, values.transpose(0, 1))

    def gather(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[kv_heads, len(slots), head_dim] keys and values (null slots read zeros)."""
        return self.keys[layer].index_select(1, slots), self.values[layer].index_select(1, slots)

    def copy_blocks(self, copies: list[CopyOnWrite]) -> None:
        size = self.block_size
        for c in copies:
            src = slice(c.src * size, c.src * size + c.num_slots)
            dst = slice(c.dst * size, c.dst * size + c.num_slots)
            for tensors in (self.keys, self.values):
                for t in tensors:
                    t[:, dst] = t[:, src]

    def _row_slots(self, tables: list[list[int]], num_tokens: int) -> torch.Tensor:
        """Slots of tokens [0, num_tokens) of every row, row after row."""
        return torch.tensor([s for t in tables for s in self.blocks.slots(t, 0, num_tokens)], dtype=torch.long, device=self.device)

    def read_rows(self, tables: list[list[int]], num_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (keys, values) as [rows, kv_heads, num_tokens, head_dim] (snapshots)."""
        flat = self._row_slots(tables, num_tokens)
        rows = len(tables)
        out = []
        for layer in range(self.shape.num_layers):
            k, v = self.gather(layer, flat)
            shape = (k.shape[0], rows, num_tokens, k.shape[2])
            out.append((k.view(shape).transpose(0, 1).contiguous(), v.view(shape).transpose(0, 1).contiguous()))
        return out

    def write_rows(self, tables: list[list[int]], layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Inverse of read_rows into already allocated tables."""
        num_tokens = layers[0][0].shape[2]
        flat = self._row_slots(tables, num_tokens)
        for layer, (k, v) in enumerate(layers):
            kk = k.to(self.device).transpose(0, 1).reshape(k.shape[1], -1, k.shape[3])
            vv = v.to(self.device).transpose(0, 1).reshape(v.shape[1], -1, v.shape[3])
            self.keys[layer].index_copy_(1, flat, kk)
            self.values[layer].index_copy_(1, flat, vv)
