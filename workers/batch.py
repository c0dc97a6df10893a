"""DecodeBatch: the rows of one or more requests stepped together for one slice.

One request (one row, or its beams) runs the exact unpadded path: its own DynamicCache, no
attention mask, positions implied by the cache length; that path is bit-identical however the
decode is cut into slices and wherever the cache was restored.

Several requests are left-padded to a common cache length and stacked, with a 2-D attention
mask and per-row position ids, and split back at the end of the slice. What batching changes:
the padded attention and the different row count of every matmul (`nn.Linear` picks different
kernels for 1-3 rows than for 4+) move logits by ~1e-6, so batched logits are not bit-equal to
solo ones; greedy tokens were equal in our trials but may differ on near-ties. A request keeps
its batch-free exactness only while it is decoded alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from workers.kvcache import merge_left_padded, select_rows, split_rows
from workers.model import LoadedModel
from workers.state import SeqState

ChooseAll = Callable[[list[SeqState]], "list[tuple[list[int], list[int]] | None]"]


class DecodeBatch:
    """Owns the merged cache during a slice; `close()` hands each live request its own cache."""

    def __init__(self, states: list[SeqState], loaded: LoadedModel):
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.states = list(states)
        self.row_counts = [s.num_rows for s in states]
        self.is_solo = len(states) == 1
        if self.is_solo:
            self.cache = states[0].cache
            self.mask: torch.Tensor | None = None
        else:
            self.cache, pads = merge_left_padded([s.cache for s in states], self.model.config)
            self.mask = self._initial_mask(pads)

    def _initial_mask(self, pads: list[int]) -> torch.Tensor:
        length = self.cache.layers[0].keys.shape[2]
        rows = []
        for pad, count in zip(pads, self.row_counts, strict=True):
            rows += [[0] * pad + [1] * (length - pad)] * count
        return torch.tensor(rows, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def step(self, choose_all: ChooseAll) -> bool:
        """Choose for every live request, forward the new tokens; False once no row is left."""
        index: list[int] = []
        tokens: list[int] = []
        live: list[tuple[SeqState, int]] = []
        offset = 0
        for state, count, picked in zip(self.states, self.row_counts, choose_all(self.states), strict=True):
            if picked is not None:
                index += [offset + r for r in picked[0]]
                tokens += picked[1]
                live.append((state, len(picked[0])))
            offset += count
        self.states = [s for s, _ in live]
        self.row_counts = [n for _, n in live]
        if not live:
            return False
        if index != list(range(offset)):
            self._select(torch.tensor(index, dtype=torch.long, device=self.device))
        self._forward(torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None])
        return True

    def _select(self, rows: torch.Tensor) -> None:
        self.cache = select_rows(self.cache, rows, self.model.config)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)

    def _forward(self, input_ids: torch.Tensor) -> None:
        if self.mask is None:
            self.cache, logits = self.loaded.forward(input_ids, self.cache)
        else:
            positions = self.mask.sum(-1, keepdim=True)
            self.mask = torch.cat([self.mask, torch.ones_like(positions)], -1)
            self.cache, logits = self.loaded.forward(
                input_ids, self.cache, attention_mask=self.mask, position_ids=positions
            )
        logits = logits[:, -1, :].float()
        offset = 0
        for state, count in zip(self.states, self.row_counts, strict=True):
            state.pending_logits = logits[offset : offset + count].contiguous()
            offset += count

    def close(self) -> None:
        """Give every request still running its own (unpadded) cache back."""
        if self.is_solo:
            for state in self.states:
                state.cache = self.cache
            return
        offset = 0
        for state, count in zip(self.states, self.row_counts, strict=True):
            state.cache = split_rows(self.cache, offset, offset + count, state.num_tokens, self.model.config)
            offset += count
