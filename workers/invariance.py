"""Find the row padding that makes this machine's linears batch-invariant, by measuring them.

A CPU GEMM picks its kernel by the number of rows, so a row's bits change with the batch size
in classes (here {1}, {2, 3}, {4+}; elsewhere {1}, {2-15}, {16+} was measured). Padding every
row-wise op to a multiple of P keeps it in one class if every multiple of P gives the same bits;
P times every row width must also be a multiple of the widest vector loop, so that elementwise
ops never end in a scalar tail. The worker probes its own weights once at start.
"""

from __future__ import annotations

import torch

from workers.native_arch import linear

CANDIDATES = (1, 2, 4, 8, 16, 32)
VECTOR_FLOATS = 64  # a multiple of two AVX-512 vectors of fp32 (and of anything narrower)
PROBE_MULTIPLES = (1, 2, 3, 4, 8, 16)


def _same_bits_for_multiples(weight: torch.Tensor, bias: torch.Tensor | None, block: int) -> bool:
    generator = torch.Generator().manual_seed(block)
    rows = block * PROBE_MULTIPLES[-1]
    x = torch.randn(rows, weight.shape[0], generator=generator).to(dtype=weight.dtype, device=weight.device)
    first = linear(x[:block], (weight, bias))
    for multiple in PROBE_MULTIPLES[1:]:
        out = linear(x[: block * multiple], (weight, bias))
        if not torch.equal(out[:block], first):
            return False
    moved = linear(torch.cat([x[block : 2 * block], x[:block]]), (weight, bias))
    return torch.equal(moved[block:], first)


def find_row_block(linears: list[tuple[torch.Tensor, torch.Tensor | None]], widths: list[int]) -> int | None:
    """The smallest P that passes for every distinct linear shape, or None if none does."""
    distinct: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for weight, bias in linears:
        distinct.setdefault((tuple(weight.shape), bias is None), (weight, bias))
    for block in CANDIDATES:
        if any(block * w % VECTOR_FLOATS for w in widths):
            continue
        if all(_same_bits_for_multiples(w, b, block) for w, b in distinct.values()):
            return block
    return None
