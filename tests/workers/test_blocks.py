"""BlockManager accounting as a hypothesis state machine: rows are allocated, grow token by
token, fork into beams that share blocks, and are released; check_integrity (free + used ==
total, every reference counted, no block owned twice) holds after every step, a shared block is
copied before a write, and a row's slots always name its own blocks."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from workers.blocks import BlockManager, PoolFull

BLOCK = 4
NUM_BLOCKS = 24


class Pool(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = BlockManager(NUM_BLOCKS, BLOCK)
        self.rows: list[tuple[list[int], int]] = []  # (table, tokens held)

    @rule(tokens=st.integers(1, 20))
    def allocate(self, tokens: int) -> None:
        need = self.blocks.blocks_for(tokens)
        free = self.blocks.num_free
        try:
            table = self.blocks.allocate(need)
        except PoolFull:
            assert need > free and self.blocks.num_free == free
            return
        assert len(table) == need and len(set(table)) == need
        self.rows.append((table, tokens))

    @precondition(lambda self: self.rows)
    @rule(index=st.integers(0, 99), copies=st.integers(1, 3))
    def fork(self, index: int, copies: int) -> None:
        table, tokens = self.rows[index % len(self.rows)]
        for _ in range(copies):
            self.rows.append((self.blocks.share(table), tokens))

    @precondition(lambda self: self.rows)
    @rule(index=st.integers(0, 99))
    def append_token(self, index: int) -> None:
        i = index % len(self.rows)
        table, tokens = self.rows[i]
        before, free = list(table), self.blocks.num_free
        try:
            copies = self.blocks.reserve([table], tokens)
        except PoolFull:
            assert table == before and self.blocks.num_free == free
            return
        assert self.blocks.refs[table[-1]] == 1, "the block written to is private"
        for c in copies:
            assert c.num_slots == tokens % BLOCK and c.src in before and c.dst == table[-1]
        assert table[:-1] == before[: len(table) - 1]
        self.rows[i] = (table, tokens + 1)

    @precondition(lambda self: self.rows)
    @rule(index=st.integers(0, 99))
    def release(self, index: int) -> None:
        table, _ = self.rows.pop(index % len(self.rows))
        self.blocks.release(table)
        assert table == []

    @invariant()
    def accounting_holds(self) -> None:
        self.blocks.check_integrity([t for t, _ in self.rows])
        for table, tokens in self.rows:
            assert len(table) == self.blocks.blocks_for(tokens)
            slots = self.blocks.slots(table, 0, tokens)
            assert all(s // BLOCK in table for s in slots) and len(set(slots)) == tokens


TestPool = Pool.TestCase
TestPool.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_integrity_catches_a_leak_and_a_double_owner() -> None:
    blocks = BlockManager(4, 2)
    table = blocks.allocate(2)
    with pytest.raises(AssertionError):
        blocks.check_integrity([])  # a held block nobody references
    with pytest.raises(AssertionError):
        blocks.check_integrity([table, table])  # two owners, one reference
    blocks.check_integrity([table])
