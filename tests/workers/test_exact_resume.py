"""Preempt/restore at random steps is bit-identical to an uninterrupted decode (in-process)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings

from tests.workers.plans import sliced, uninterrupted
from tests.workers.strategies import cut_points, gen_params, prompts
from workers.engine import WorkerEngine

RIDS = itertools.count()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(prompt=prompts, params=gen_params(), cuts=cut_points())
def test_swap_resume_is_bit_exact(engine: WorkerEngine, prompt: list[int], params: dict, cuts: list[int]) -> None:
    ref = uninterrupted(engine.execute_plan, f"ref{next(RIDS)}", prompt, params)
    run = sliced([engine.execute_plan], f"cut{next(RIDS)}", prompt, params, cuts)
    assert not ref.errors and not run.errors
    assert run.output_ids == ref.output_ids
    assert run.finish_reason == ref.finish_reason
    assert run.step_scores == ref.step_scores  # every step's logits (and beam scores), bitwise
    assert len(ref.step_scores) >= 1
    if "num_beams" not in params:
        assert run.streamed == ref.streamed == ref.output_ids
    assert engine.store.count_entries() == 0
    assert engine.resident == {}


@SETTINGS
@given(prompt=prompts, params=gen_params(), cuts=cut_points())
def test_drop_resume_continues_from_saved_logits(
    engine: WorkerEngine, prompt: list[int], params: dict, cuts: list[int]
) -> None:
    """Drop mode re-prefills the KV (~1e-6 off), but the first step after each restore decides
    from the saved pending logits, so the step that follows the first cut is still exact."""
    ref = uninterrupted(engine.execute_plan, f"ref{next(RIDS)}", prompt, params)
    run = sliced([engine.execute_plan], f"drop{next(RIDS)}", prompt, params, cuts, mode="drop")
    assert not run.errors and run.output_ids is not None
    first_cut = min(cuts)
    n = min(first_cut + 1, len(ref.step_scores))
    assert run.step_scores[:n] == ref.step_scores[:n]
    assert engine.store.count_entries() == 0
