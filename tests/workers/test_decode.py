"""Decoder behaviour: batching vs solo, stops, context limits, errors per request."""

from __future__ import annotations

from tests.workers.plans import prefill, uninterrupted
from workers.engine import WorkerEngine
from workers.stops import tail_has_stop_string

PROMPTS = [list(b"hello world"), list(b"hi"), list(b"the quick brown fox jumps over"), [7] * 33]


def test_batched_greedy_tokens_equal_solo(engine: WorkerEngine) -> None:
    """Documented: batched logits differ ~1e-6, greedy tokens were equal in these cases."""
    params = {"max_new_tokens": 20}
    solo = [uninterrupted(engine.execute_plan, f"s{i}", p, params).output_ids for i, p in enumerate(PROMPTS)]
    rids = [f"b{i}" for i in range(len(PROMPTS))]
    loads = [prefill(r, p, params) for r, p in zip(rids, PROMPTS, strict=True)]
    outputs: dict[str, list[int]] = {}
    done = engine.execute_plan({"plan_id": 1, "load": loads, "decode": rids, "steps": 7})
    assert all(r["num_steps"] == 7 and len(r["new_token_ids"]) == 7 for r in done["results"])
    done = engine.execute_plan({"plan_id": 2, "decode": rids, "steps": 100})
    for result in done["results"]:
        outputs[result["rid"]] = result["output_ids"]
    assert [outputs[r] for r in rids] == solo
    assert engine.resident == {}


def test_batch_mixes_beams_and_sampling(engine: WorkerEngine) -> None:
    """Mixed batch runs to completion with the right lengths (exactness is not claimed)."""
    specs = {"g": {"max_new_tokens": 9}, "s": {"max_new_tokens": 11, "temperature": 1.0, "seed": 5},
             "b": {"max_new_tokens": 10, "num_beams": 3}}
    loads = [prefill(r, list(b"mixed batch"), p) for r, p in specs.items()]
    done = engine.execute_plan({"plan_id": 1, "load": loads, "decode": list(specs), "steps": 100})
    lengths = {r["rid"]: len(r["output_ids"]) for r in done["results"]}
    assert lengths == {"g": 9, "s": 11, "b": 10}


def test_stop_token_stops_and_is_kept(engine: WorkerEngine) -> None:
    ref = uninterrupted(engine.execute_plan, "ref", list(b"stop here"), {"max_new_tokens": 24})
    stop = ref.output_ids[4]
    cut = ref.output_ids.index(stop) + 1
    run = uninterrupted(engine.execute_plan, "st", list(b"stop here"), {"max_new_tokens": 24, "stop_token_ids": [stop]})
    assert run.output_ids == ref.output_ids[:cut] and run.finish_reason == "stop"


def test_stop_string_in_tail(tiny: object) -> None:
    tok = tiny.tokenizer
    ids = tok.encode("the end. Done", add_special_tokens=False)
    assert tail_has_stop_string(ids, ["Done"], tok)
    assert not tail_has_stop_string(ids, ["done!"], tok)


def test_context_too_long_fails_only_that_request(engine: WorkerEngine) -> None:
    max_context = engine.loaded.info.max_context
    loads = [prefill("long", [1] * (max_context - 5), {"max_new_tokens": 10}), prefill("ok", [1, 2], {"max_new_tokens": 3})]
    done = engine.execute_plan({"plan_id": 1, "load": loads, "decode": ["long", "ok"], "steps": 10})
    assert done["loaded"][0]["error"]["code"] == "CONTEXT_TOO_LONG"
    assert done["results"][0]["error"]["code"] == "CONTEXT_TOO_LONG"
    assert done["results"][1]["error"] is None and done["results"][1]["is_finished"]


def test_bad_requests_get_errors(engine: WorkerEngine) -> None:
    loads = [prefill("empty", [], {}), prefill("oov", [10**6], {}), prefill("neg", [1], {"max_new_tokens": -1}),
             {"rid": "weird", "mode": "teleport"}]
    done = engine.execute_plan({"plan_id": 1, "load": loads, "decode": ["nobody"], "steps": 1})
    assert [r["error"]["code"] for r in done["loaded"]] == ["INVALID_ARGUMENT"] * 4
    assert done["results"][0]["error"]["code"] == "NOT_FOUND"
    assert engine.execute_plan({"plan_id": 2, "evict": [{"rid": "nobody", "mode": "swap"}]})["evicted"][0]["error"]["code"] == "NOT_FOUND"


def test_sampling_is_seeded(engine: WorkerEngine) -> None:
    params = {"max_new_tokens": 16, "temperature": 1.0, "seed": 11}
    a = uninterrupted(engine.execute_plan, "a", [5, 6], params).output_ids
    b = uninterrupted(engine.execute_plan, "b", [5, 6], params).output_ids
    c = uninterrupted(engine.execute_plan, "c", [5, 6], dict(params, seed=12)).output_ids
    assert a == b and a != c
