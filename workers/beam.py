"""One beam-search step over a request's pending logits (roughly Hugging Face's semantics).

Keep `num_beams` running beams; of the top 2*num_beams candidates, a candidate ending in a stop
token (or stop string) becomes a finished hypothesis if it ranks within the first num_beams.
Finished score = sum_logprob / len(ids) ** length_penalty. Done when max_new_tokens is reached,
no beam runs, or (early_stopping) num_beams hypotheses are finished, or (not early_stopping) the
worst kept hypothesis beats the best running beam's score at its current length.
"""

from __future__ import annotations

from typing import Any

import torch

from workers.state import Hypothesis, SeqState
from workers.stops import stop_reason


def beam_choose(state: SeqState, eos_id: int, tokenizer: Any) -> tuple[list[int], list[int]] | None:
    """Advance the beams one token. Returns (source rows, new tokens) to forward, None if done."""
    params = state.params
    if len(state.seqs[0]) >= params.max_new_tokens:
        finalize(state, include_running=True)
        return None
    assert state.beam_scores is not None
    logprobs = torch.log_softmax(state.pending_logits.float(), -1) + state.beam_scores[:, None]
    num_candidates = min(2 * params.num_beams, logprobs.numel())
    values, flat_ids = torch.topk(logprobs.view(-1), num_candidates)
    kept, rows, tokens = _pick_candidates(state, values, flat_ids.tolist(), logprobs.shape[1], eos_id, tokenizer)
    state.seqs = [state.seqs[r] + [t] for r, t in zip(rows, tokens, strict=True)]
    state.beam_scores = values[kept] if kept else values[:0]
    if not rows or len(state.seqs[0]) >= params.max_new_tokens:
        finalize(state, include_running=True)
        return None
    if is_done(state):
        finalize(state, include_running=False)
        return None
    return rows, tokens


def _pick_candidates(
    state: SeqState, values: torch.Tensor, flat_ids: list[int], vocab: int, eos_id: int,
    tokenizer: Any,
) -> tuple[list[int], list[int], list[int]]:
    num_beams = state.params.num_beams
    kept: list[int] = []
    rows: list[int] = []
    tokens: list[int] = []
    for rank, flat in enumerate(flat_ids):
        row, token = divmod(flat, vocab)
        ids = state.seqs[row] + [token]
        reason = stop_reason(ids, state.params, eos_id, tokenizer)
        if reason is not None:
            if rank < num_beams:
                add_hypothesis(state, float(values[rank]), ids, reason)
            continue
        kept.append(rank)
        rows.append(row)
        tokens.append(token)
        if len(rows) == num_beams:
            break
    return kept, rows, tokens


def hypothesis_score(sum_logprob: float, length: int, length_penalty: float) -> float:
    return sum_logprob / (max(length, 1) ** length_penalty)


def add_hypothesis(state: SeqState, sum_logprob: float, ids: list[int], reason: str) -> None:
    score = hypothesis_score(sum_logprob, len(ids), state.params.length_penalty)
    state.finished_hyps.append(Hypothesis(score, sum_logprob, ids, reason))
    state.finished_hyps.sort(key=lambda h: -h.score)
    del state.finished_hyps[state.params.num_beams :]


def is_done(state: SeqState) -> bool:
    params = state.params
    if len(state.finished_hyps) < params.num_beams:
        return False
    if params.early_stopping:
        return True
    assert state.beam_scores is not None
    best_running = hypothesis_score(
        float(state.beam_scores.max()), len(state.seqs[0]), params.length_penalty
    )
    return state.finished_hyps[-1].score >= best_running


def finalize(state: SeqState, include_running: bool) -> None:
    candidates = list(state.finished_hyps)
    if include_running and state.beam_scores is not None:
        for ids, score in zip(state.seqs, state.beam_scores.tolist(), strict=True):
            candidates.append(
                Hypothesis(hypothesis_score(score, len(ids), state.params.length_penalty), score, ids, "length")
            )
    if not candidates:
        state.finish("length", [])
        return
    best = max(candidates, key=lambda h: h.score)  # first of equals wins
    state.finish(best.reason, best.ids)
