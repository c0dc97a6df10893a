"""Sampling pieces: temperature/top-k/top-p filtering of a row of logits, per-request generators
(the draw itself: workers/picking.py)."""

from __future__ import annotations

import torch

from workers.params import GenParams


def filtered_logits(logits: torch.Tensor, params: GenParams) -> torch.Tensor:
    if 0 < params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        drop_sorted = (torch.cumsum(probs, -1) - probs) >= params.top_p  # keeps at least one
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def new_generator(seed: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def generator_state(generator: torch.Generator) -> bytes:
    return generator.get_state().numpy().tobytes()


def restore_generator(state: bytes, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    return generator
