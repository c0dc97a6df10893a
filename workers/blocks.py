"""BlockManager: block accounting of one worker's paged KV pool (pure: no torch, no I/O).

The pool has `num_blocks` blocks of `block_size` token slots each. A sequence row (a request's
only row, or one beam) owns a block table: the list of blocks that hold its tokens in order,
token i at slot `table[i // block_size] * block_size + i % block_size`. Beams share the blocks of
their common prefix (reference-counted) and copy a shared block on write.

Contract: owned by one WorkerEngine, called from the worker's main loop only. Every method
leaves `check_integrity` true; a request that cannot get blocks gets PoolFull and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass


class PoolFull(Exception):
    """Not enough free blocks; the caller's state is unchanged."""


@dataclass(slots=True)
class CopyOnWrite:
    """Slots [0, num_slots) of block `src` must be copied into block `dst` before the write."""

    src: int
    dst: int
    num_slots: int


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int):
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"pool needs >= 1 block of >= 1 slot, got {num_blocks} x {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.refs = [0] * num_blocks
        self.free_blocks = list(range(num_blocks - 1, -1, -1))  # a stack: lowest block first

    @property
    def num_free(self) -> int:
        return len(self.free_blocks)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self.free_blocks)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def allocate(self, num: int) -> list[int]:
        if num > len(self.free_blocks):
            raise PoolFull(f"need {num} KV blocks, {len(self.free_blocks)} of {self.num_blocks} free")
        taken = [self.free_blocks.pop() for _ in range(num)]
        for block in taken:
            self.refs[block] = 1
        return taken

    def share(self, table: list[int]) -> list[int]:
        """A second owner of every block of `table` (a beam forked from it)."""
        for block in table:
            self.refs[block] += 1
        return list(table)

    def release(self, table: list[int]) -> None:
        for block in table:
            assert self.refs[block] > 0, f"block {block} released while free"
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free_blocks.append(block)
        table.clear()

    def reserve(self, tables: list[list[int]], num_tokens: int) -> list[CopyOnWrite]:
        """Make room for token `num_tokens` (0-based) in every row: a new block where a row's
        blocks are full, a private copy where its last block is shared. All rows or none."""
        offset = num_tokens % self.block_size
        need_new = sum(1 for t in tables if offset == 0 or self.refs[t[-1]] > 1)
        if need_new > len(self.free_blocks):
            raise PoolFull(f"need {need_new} KV blocks, {len(self.free_blocks)} of {self.num_blocks} free")
        copies: list[CopyOnWrite] = []
        for table in tables:
            if offset == 0:
                table.extend(self.allocate(1))
            elif self.refs[table[-1]] > 1:
                (fresh,) = self.allocate(1)
                self.refs[table[-1]] -= 1
                copies.append(CopyOnWrite(table[-1], fresh, offset))
                table[-1] = fresh
        return copies

    def slots(self, table: list[int], start: int, stop: int) -> list[int]:
        """Pool slots of tokens [start, stop) of a row."""
        size = self.block_size
        return [table[i // size] * size + i % size for i in range(start, stop)]

    def check_integrity(self, tables: list[list[int]]) -> None:
        """free + used == total; every reference is counted; no free block is referenced."""
        counts = [0] * self.num_blocks
        for table in tables:
            for block in table:
                counts[block] += 1
        assert counts == self.refs, "block reference counts do not match the tables"
        free = set(self.free_blocks)
        assert len(free) == len(self.free_blocks), "a block is free twice"
        assert all((self.refs[b] == 0) == (b in free) for b in range(self.num_blocks)), "free list out of step"
        assert self.num_free + sum(1 for r in self.refs if r > 0) == self.num_blocks


@dataclass(slots=True)
class PagedKV:
    """A resident request's KV in the pool: one block table per row (beams share blocks)."""

    tables: list[list[int]]
    block_bytes: int

    @property
    def nbytes(self) -> int:
        return len({block for table in self.tables for block in table}) * self.block_bytes
