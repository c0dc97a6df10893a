"""Batched token choice: the next token of every single-row request of a step (greedy or seeded
sampling) and its log-probability, with one device-to-host transfer for the whole batch.

Sampling reproduces `torch.multinomial(probs, 1, generator=g)` draw for draw: for one sample,
multinomial draws q ~ Exp(1) of the vocabulary's size from the generator and returns
argmax(probs / q); we draw the same q from each request's own generator, so each request keeps
its RNG stream (a snapshot's generator state resumes it), and take the argmax of every row at
once. Every op but the stacked argmax runs on the request's own row, so a pick is
batch-invariant. Beam search picks per request (workers/beam.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import torch

from workers.sampling import filtered_logits
from workers.state import SeqState


@dataclass(slots=True)
class Pick:
    token: int
    logprob: float | None  # the float32 log softmax of the row at `token`, when asked for


def draws_this_step(state: SeqState) -> bool:
    """True if `state`'s next choice consumes its pending logits (single row, not at its length limit)."""
    return not state.params.is_beam and len(state.seqs[0]) < state.params.max_new_tokens


def pick_tokens(states: list[SeqState]) -> list[Pick]:
    """One Pick per state (all single-row, see draws_this_step), in order; advances the samplers' generators."""
    if not states:
        return []
    tokens = torch.stack([_score(s) for s in states]).argmax(-1)
    parts = [tokens]
    asked = [i for i, s in enumerate(states) if s.params.logprobs]
    if asked:
        lps = torch.stack([torch.log_softmax(states[i].pending_logits[0], -1)[tokens[i]] for i in asked])
        parts.append(lps.float().view(torch.int32).to(torch.int64))  # float32 bits ride with the tokens
    host = torch.cat(parts).tolist()  # the step's one sync
    logprobs: list[float | None] = [None] * len(states)
    for i, bits in zip(asked, host[len(states):], strict=True):
        logprobs[i] = _float32(bits)
    return [Pick(t, lp) for t, lp in zip(host[: len(states)], logprobs, strict=True)]


def _score(state: SeqState) -> torch.Tensor:
    """The row whose argmax is the choice: the logits (greedy) or probs / q with q ~ Exp(1)."""
    logits = state.pending_logits[0]
    params = state.params
    if params.is_greedy:
        return logits
    probs = torch.softmax(filtered_logits(logits / params.temperature, params), -1)
    q = torch.empty_like(probs).exponential_(1, generator=state.generator)
    return probs / q


def _float32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<i", bits))[0]
