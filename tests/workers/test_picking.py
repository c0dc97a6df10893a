"""Batched picking (workers/picking.py): each request's pick equals the per-request reference
(torch.argmax, torch.multinomial with its own generator, log_softmax) bit for bit, whatever else
is in the batch, and each generator ends where the reference's does."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.params import GenParams
from workers.picking import pick_tokens
from workers.sampling import filtered_logits, generator_state, new_generator
from workers.state import SeqState

VOCAB = 97
CPU = torch.device("cpu")


@st.composite
def requests(draw: st.DrawFn) -> tuple[GenParams, int, int]:
    """(params, logits seed, sampler seed)."""
    params = GenParams(logprobs=draw(st.booleans()))
    if draw(st.booleans()):
        params.temperature = draw(st.sampled_from([0.3, 1.0, 1.7]))
        params.top_k = draw(st.sampled_from([0, 1, 5, 50, VOCAB + 3]))
        params.top_p = draw(st.sampled_from([1.0, 0.9, 0.5, 1e-6]))
    return params, draw(st.integers(0, 2**31)), draw(st.integers(0, 2**31))


def make_state(params: GenParams, logits_seed: int, seed: int) -> SeqState:
    logits = torch.randn(1, VOCAB, generator=torch.Generator().manual_seed(logits_seed)) * 4
    generator = None if params.is_greedy else new_generator(seed, CPU)
    return SeqState(rid="r", params=params, prompt_ids=[1], seqs=[[]], pending_logits=logits, cache=None,
                    seed=seed, generator=generator)


def reference(params: GenParams, logits_seed: int, seed: int) -> tuple[int, float, bytes | None]:
    """The per-request draw: argmax, or torch.multinomial on the filtered softmax."""
    state = make_state(params, logits_seed, seed)
    logits = state.pending_logits[0]
    if params.is_greedy:
        token = int(torch.argmax(logits))
    else:
        probs = torch.softmax(filtered_logits(logits / params.temperature, params), -1)
        token = int(torch.multinomial(probs, 1, generator=state.generator))
    after = generator_state(state.generator) if state.generator is not None else None
    return token, float(torch.log_softmax(logits, -1)[token]), after


@settings(max_examples=60, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=9), st.randoms(use_true_random=False))
def test_batch_picks_equal_reference_draws(specs: list, rnd) -> None:
    states = [make_state(*spec) for spec in specs]
    order = list(range(len(states)))
    rnd.shuffle(order)  # the batch's order and company must not matter
    picks = dict(zip(order, pick_tokens([states[i] for i in order]), strict=True))
    for i, spec in enumerate(specs):
        token, logprob, after = reference(*spec)
        assert picks[i].token == token
        if spec[0].logprobs:
            assert picks[i].logprob == logprob
        else:
            assert picks[i].logprob is None
        if after is not None:
            assert generator_state(states[i].generator) == after


def test_logprob_is_float32_of_the_chosen_token() -> None:
    state = make_state(GenParams(logprobs=True), 3, 0)
    (pick,) = pick_tokens([state])
    expected = torch.log_softmax(state.pending_logits[0], -1).max()
    assert pick.token == int(state.pending_logits[0].argmax())
    assert torch.tensor(pick.logprob, dtype=torch.float32) == expected
