"""The native engine is batch-invariant: a request's tokens and every step's logits (and beam
scores) are bit-identical whether it runs alone or in any batch, joining and leaving at random
steps, through swaps and restores."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workers.plans import Run, absorb, prefill, uninterrupted
from tests.workers.strategies import gen_params
from workers.engine import EngineConfig, WorkerEngine

RUNS = itertools.count()
USED: list[str] = []
long_prompts = st.lists(st.integers(0, 255), min_size=1, max_size=300)


@st.composite
def workloads(draw: st.DrawFn) -> list[tuple[list[int], dict, int]]:
    """(prompt, params, arrival plan index) per request."""
    num = draw(st.integers(1, 6))
    work = [(draw(long_prompts), draw(gen_params(max_new=16)), draw(st.integers(0, 4))) for _ in range(num)]
    for _, params, _ in work:
        params["logprobs"] = "num_beams" not in params and draw(st.booleans())
    return work


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[int, float, int]]:
    """Per plan: (steps, fraction of live requests decoded, seed for who is swapped out)."""
    return draw(st.lists(st.tuples(st.integers(1, 5), st.sampled_from([0.3, 0.6, 1.0]), st.integers(0, 99)), min_size=1, max_size=12))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(work=workloads(), schedule=schedules(), data=st.data())
def test_any_batch_gives_the_solo_bits(native_engine: WorkerEngine, work: list, schedule: list, data: st.DataObject) -> None:
    engine, tag = native_engine, next(RUNS)
    engine.free(list(engine.resident) + USED)  # what an earlier failing example left (shared fixture)
    rids = [f"b{tag}-{i}" for i in range(len(work))]
    USED.extend(rids)
    solo = {rid: uninterrupted(engine.execute_plan, f"solo-{rid}", prompt, params) for rid, (prompt, params, _) in zip(rids, work, strict=True)}
    runs = {rid: Run() for rid in rids}
    where = {}  # rid -> "resident" | "swapped"
    plan_index = 0
    while any(runs[r].output_ids is None and not runs[r].errors for r in rids):
        steps, share, _ = schedule[plan_index % len(schedule)]
        arriving = [r for r, (_, _, at) in zip(rids, work, strict=True) if r not in where and (at <= plan_index or plan_index >= 6)]
        waiting = [r for r in rids if where.get(r) == "swapped"]
        live = [r for r in rids if where.get(r) == "resident"]
        evict = data.draw(st.lists(st.sampled_from(live), unique=True, max_size=2)) if live else []
        restore = [r for r in waiting if data.draw(st.booleans())] or waiting[:1]
        load = [prefill(r, work[rids.index(r)][0], work[rids.index(r)][1]) for r in arriving]
        load += [{"rid": r, "mode": "restore"} for r in restore]
        candidates = [r for r in live if r not in evict] + arriving + restore
        decode = [r for i, r in enumerate(candidates) if i < max(1, round(share * len(candidates)))]
        done = engine.execute_plan({"plan_id": plan_index, "evict": [{"rid": r, "mode": "swap"} for r in evict],
                                    "load": load, "decode": decode, "steps": steps})
        for r in evict:
            where[r] = "swapped"
        for r in arriving + restore:
            where[r] = "resident"
        for result in done["results"]:
            single = dict(done, evicted=[], loaded=[], results=[result])
            if absorb(runs[result["rid"]], single):
                where[result["rid"]] = "done"
        engine.check_integrity()
        plan_index += 1
        assert plan_index < 400, "schedule did not finish"
    for rid in rids:
        assert not runs[rid].errors and not solo[rid].errors
        assert runs[rid].output_ids == solo[rid].output_ids
        assert runs[rid].step_scores == solo[rid].step_scores  # every step's logits, bitwise
        assert runs[rid].output_logprobs == solo[rid].output_logprobs  # float32 bytes
        if work[rids.index(rid)][1]["logprobs"]:
            assert len(runs[rid].output_logprobs) == 4 * len(runs[rid].output_ids)
    assert engine.resident == {} and engine.store.count_entries() == 0
    assert engine.decoder.pool.blocks.num_free == engine.decoder.pool.blocks.num_blocks


def test_the_engine_probed_this_machine_invariant(native_engine: WorkerEngine) -> None:
    facts = native_engine.decoder.describe()
    assert facts["engine"] == "native" and facts["batch_invariant"] is True
    assert facts["kv_pool"]["num_blocks"] >= 1 and facts["kv_pool"]["bytes_per_token"] == native_engine.loaded.info.kv_bytes_per_token


def test_generic_engine_reports_itself_not_invariant(tiny, store) -> None:
    engine = WorkerEngine(tiny, store, EngineConfig(engine="hf"))
    assert engine.decoder.describe()["engine"] == "hf" and engine.decoder.describe()["batch_invariant"] is False


def test_a_long_prompt_is_chunked_into_the_decoding_steps(native_engine: WorkerEngine) -> None:
    """A 2,000-token prompt joins while another request decodes: every forward carries at most
    one budget of prompt tokens, the decoding request steps in each of them, and the prompt's
    chunks are cut at the fixed multiples of PREFILL_CHUNK."""
    from workers.native_decoder import PREFILL_CHUNK, STEP_TOKENS

    engine = native_engine
    engine.execute_plan({"plan_id": 1, "load": [prefill("short", [5, 6, 7], {"max_new_tokens": 40})], "decode": ["short"], "steps": 1})
    forwards: list[list[tuple[int, int]]] = []
    real = engine.decoder.native.forward

    def spy(segments):
        forwards.append([(s.start, len(s.token_ids)) for s in segments])
        return real(segments)

    engine.decoder.native.forward = spy
    long_prompt = [i % 250 for i in range(2000)]
    done = engine.execute_plan({"plan_id": 2, "load": [prefill("long", long_prompt, {"max_new_tokens": 4})],
                                "decode": ["short", "long"], "steps": 12})
    engine.decoder.native.forward = real
    assert all(r["error"] is None for r in done["results"])
    prefill_forwards = [f for f in forwards if any(n > 1 for _, n in f)]
    assert len(prefill_forwards) >= 2000 // STEP_TOKENS
    for segments in prefill_forwards:
        prompt_tokens = sum(n for _, n in segments if n > 1)
        assert prompt_tokens <= STEP_TOKENS and any(n == 1 for _, n in segments), segments  # short still steps
        assert all(start % PREFILL_CHUNK == 0 for start, n in segments if n > 1)
    engine.free(["short", "long"])
    engine.check_integrity()
