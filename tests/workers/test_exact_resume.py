"""Preempt/restore at random steps is bit-identical to an uninterrupted decode (in-process)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings

from tests.workers.plans import Run, absorb, prefill, sliced, uninterrupted
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


@SETTINGS
@given(prompt=prompts, params=gen_params(), cuts=cut_points())
def test_a_checkpoint_outlives_its_worker_and_resumes_bit_exact(
    engine: WorkerEngine, prompt: list[int], params: dict, cuts: list[int]
) -> None:
    """Checkpoint at the first cut (the request stays resident and runs on), lose the resident
    state at the second (the worker died), restore from the checkpoint under a new key, and the
    replayed steps and the rest equal an uninterrupted decode; the checkpoint is kept until freed."""
    ref = uninterrupted(engine.execute_plan, f"ref{next(RIDS)}", prompt, params)
    rid, again, key = f"c{next(RIDS)}", f"r{next(RIDS)}", f"ckpt{next(RIDS)}"
    first, lost = sorted(cuts)[0], sorted(cuts)[-1] + 3
    run = Run()
    done = engine.execute_plan({"plan_id": 1, "load": [prefill(rid, prompt, params)], "decode": [rid], "steps": first,
                                "checkpoint": [{"rid": rid, "key": key}]})
    if absorb(run, done):
        return  # finished before the checkpoint: nothing to resume
    assert done["checkpointed"][0]["error"] is None and done["checkpointed"][0]["snapshot_bytes"] > 0
    engine.execute_plan({"plan_id": 2, "decode": [rid], "steps": lost - first})
    engine.free([rid])  # the worker died: its resident state is gone, the checkpoint is not
    replay = Run(step_scores=list(run.step_scores))
    absorb(replay, engine.execute_plan({"plan_id": 3, "load": [{"rid": again, "mode": "restore", "source": key}],
                                        "decode": [again], "steps": 10_000}))
    assert not replay.errors
    assert replay.output_ids == ref.output_ids and replay.finish_reason == ref.finish_reason
    assert replay.step_scores == ref.step_scores
    assert engine.store.count_entries(key) > 0  # kept until the kernel frees it
    engine.free([key])
    assert engine.store.count_entries() == 0 and engine.resident == {}
