"""Snapshot codec round trips, and every way a snapshot can be invalid is detected."""

from __future__ import annotations

import itertools

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.workers.plans import prefill
from tests.workers.strategies import gen_params, prompts
from workers.engine import EngineConfig, WorkerEngine
from workers.kvcache import cache_layers
from workers.model import LoadedModel
from workers.restore import swap_in, swap_out
from workers.state import SeqState
from workers.store import SnapshotStore, entry_key

RIDS = itertools.count()
GREEDY = {"max_new_tokens": 16}


def assert_same_state(decoder, a: SeqState, b: SeqState) -> None:
    assert (a.rid, a.prompt_ids, a.seqs, a.seed, a.num_steps) == (b.rid, b.prompt_ids, b.seqs, b.seed, b.num_steps)
    assert a.params == b.params
    assert a.finished_hyps == b.finished_hyps
    assert torch.equal(a.pending_logits, b.pending_logits)
    assert (a.beam_scores is None) == (b.beam_scores is None)
    if a.beam_scores is not None:
        assert torch.equal(a.beam_scores, b.beam_scores)
    assert (a.generator is None) == (b.generator is None)
    if a.generator is not None:
        assert torch.equal(a.generator.get_state(), b.generator.get_state())
    for (ka, va), (kb, vb) in zip(decoder.kv_layers(a), decoder.kv_layers(b), strict=True):
        assert torch.equal(ka, kb) and torch.equal(va, vb)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=prompts, params=gen_params(max_new=12), steps=st.integers(0, 12), rid=st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8)))
def test_codec_round_trip(engine: WorkerEngine, prompt: list[int], params: dict, steps: int, rid: object) -> None:
    engine.free([rid])
    engine.execute_plan({"plan_id": 1, "load": [prefill(rid, prompt, params)], "decode": [rid], "steps": steps})
    state = engine.resident.pop(rid, None)
    if state is None:  # finished within `steps`
        return
    layers = engine.decoder.kv_layers(state)
    nbytes = swap_out(engine.store, state, "swap", engine.fingerprint, layers=layers)
    assert nbytes >= sum(k.nbytes + v.nbytes for k, v in layers)
    back, how = swap_in(engine.store, engine.decoder, rid)
    assert how == "swap"
    assert_same_state(engine.decoder, state, back)
    engine.decoder.release(state)
    engine.decoder.release(back)
    engine.free([rid])
    assert engine.store.count_entries() == 0
    engine.check_integrity()


def swapped(engine: WorkerEngine, rid: str, params: dict = GREEDY) -> None:
    done = engine.execute_plan({"plan_id": 1, "load": [prefill(rid, list(b"corrupt me"), params)], "decode": [rid], "steps": 3})
    assert done["results"][0]["error"] is None
    done = engine.execute_plan({"plan_id": 2, "evict": [{"rid": rid, "mode": "swap"}]})
    assert done["evicted"][0]["error"] is None and done["evicted"][0]["snapshot_bytes"] > 0


def restore(engine: WorkerEngine, rid: str) -> dict:
    return engine.execute_plan({"plan_id": 3, "load": [{"rid": rid, "mode": "restore"}], "decode": [rid], "steps": 100})


def flip_byte(store: SnapshotStore, rid: str, name: str, at: int = 100) -> None:
    with store.env.begin(write=True) as txn:
        value = bytearray(txn.get(entry_key(rid, name)))
        value[at % len(value)] ^= 0x01
        txn.put(entry_key(rid, name), bytes(value))


def assert_invalid(done: dict, needle: str) -> None:
    error = done["loaded"][0]["error"]
    assert error is not None and error["code"] == "SNAPSHOT_INVALID", error
    assert needle in error["message"]
    assert done["results"][0]["error"]["code"] == "SNAPSHOT_INVALID"


def test_flipped_kv_byte_is_snapshot_invalid_and_worker_keeps_serving(engine: WorkerEngine) -> None:
    swapped(engine, "r1")
    flip_byte(engine.store, "r1", "t/k2")
    assert_invalid(restore(engine, "r1"), "t/k2")
    assert "r1" not in engine.resident
    done = engine.execute_plan({"plan_id": 4, "load": [prefill("r2", [1, 2, 3], GREEDY)], "decode": ["r2"], "steps": 100})
    assert done["results"][0]["is_finished"] and done["results"][0]["output_ids"]
    engine.free(["r1"])
    assert engine.store.count_entries() == 0


def test_flipped_meta_byte_and_missing_value_are_invalid(engine: WorkerEngine) -> None:
    swapped(engine, "m")
    flip_byte(engine.store, "m", "meta", at=40)
    assert_invalid(restore(engine, "m"), "metadata")
    engine.free(["m"])
    swapped(engine, "x")
    with engine.store.env.begin(write=True) as txn:
        txn.delete(entry_key("x", "t/v0"))
    assert_invalid(restore(engine, "x"), "missing")


def test_no_snapshot_is_invalid(engine: WorkerEngine) -> None:
    assert_invalid(restore(engine, "never-swapped"), "no snapshot")


def test_fingerprint_mismatch_is_invalid(tiny: LoadedModel, store: SnapshotStore, engine: WorkerEngine) -> None:
    swapped(engine, "f")
    other = WorkerEngine(tiny, store, EngineConfig())
    other.decoder.fingerprint = dict(other.decoder.fingerprint, torch_threads=2)
    assert_invalid(restore(other, "f"), "torch_threads")
    assert store.count_entries("f") > 0  # kept: a worker with the right fingerprint may load it


def test_recompute_on_invalid_continues(tiny: LoadedModel, store: SnapshotStore, engine: WorkerEngine) -> None:
    ref = engine.execute_plan({"plan_id": 0, "load": [prefill("ref", list(b"corrupt me"), GREEDY)], "decode": ["ref"], "steps": 100})
    swapped(engine, "c")
    flip_byte(store, "c", "t/k0")
    lenient = WorkerEngine(tiny, store, EngineConfig(on_invalid="recompute"))
    done = restore(lenient, "c")
    assert done["loaded"][0]["error"] is None and done["loaded"][0]["how"] == "recompute"
    result = done["results"][0]
    assert result["is_finished"] and len(result["output_ids"]) == GREEDY["max_new_tokens"]
    # the tokens before the cut were never recomputed
    assert result["output_ids"][:3] == ref["results"][0]["output_ids"][:3]
    assert store.count_entries() == 0


def test_entries_return_to_zero_on_finish_and_free(engine: WorkerEngine) -> None:
    for i in range(3):
        swapped(engine, f"e{i}", {"max_new_tokens": 8, "num_beams": 2})
    assert engine.store.count_entries() > 0
    assert all(engine.store.count_entries(f"e{i}") > 0 for i in range(3))
    done = restore(engine, "e0")
    assert done["results"][0]["is_finished"]
    assert engine.store.count_entries("e0") == 0
    engine.free(["e1"])
    assert engine.store.count_entries("e1") == 0 and engine.store.count_entries("e2") > 0
    engine.execute_plan({"plan_id": 9, "load": [{"rid": "e2", "mode": "restore"}], "decode": [], "steps": 0})
    assert engine.store.count_entries() == 0 and "e2" in engine.resident  # resident again: no snapshot
    engine.check_integrity()
    engine.free(["e2"])
    assert engine.resident == {}


def test_store_grows_its_map(tmp_path: object) -> None:
    small = SnapshotStore(f"{tmp_path}/grow.lmdb", map_bytes=1 << 16)
    blob = bytes(range(256)) * 4096  # 1 MiB > the initial map
    small.put_entries("big", [("meta", b"m"), ("t/a", blob), ("t/b", blob)])
    meta, arrays = small.read_snapshot("big", lambda raw: ["t/a"])
    assert meta == b"m" and arrays["t/a"].tobytes() == blob
    assert small.count_entries("big") == 3 and small.delete("big") == 3
    small.close()


def test_make_cache_decodes_like_the_librarys_own_cache_without_copying(tiny: LoadedModel) -> None:
    """What users depend on: a cache rebuilt from plain tensors (as a restore does) continues the
    decode bit-identically to the cache the library's own forward built, and holds the given
    tensors themselves (no copy) until the next step appends to them."""
    from workers.kvcache import cache_len, make_cache

    ids = torch.tensor([list(b"a cache built by hand")], dtype=torch.long)
    library_cache, library_logits = tiny.forward(ids)
    given = [(k.clone(), v.clone()) for k, v in cache_layers(library_cache)]
    ours = make_cache(given, tiny.model.config)
    assert all(ka is kg and va is vg for (ka, va), (kg, vg) in zip(cache_layers(ours), given, strict=True))
    assert cache_len(ours) == ours.get_seq_length() == ids.shape[1]
    token = library_logits[:, -1:].argmax(-1)
    for _ in range(6):
        library_cache, library_logits = tiny.forward(token, library_cache)
        ours, logits = tiny.forward(token, ours)
        assert torch.equal(logits, library_logits)
        token = logits[:, -1:].argmax(-1)
    for (ka, va), (kb, vb) in zip(cache_layers(ours), cache_layers(library_cache), strict=True):
        assert torch.equal(ka, kb) and torch.equal(va, vb)


def test_tensor_entry_bytes_for_any_layout() -> None:
    from workers.snapshot import tensor_entry

    base = torch.randn(3, 4, 5)
    for tensor in (base, base.transpose(0, 2), base.clone().requires_grad_(True), base.half()):
        entry = tensor_entry("t/x", tensor)
        assert bytes(memoryview(entry.data).cast("B")) == tensor.detach().contiguous().numpy().tobytes()
        assert entry.nbytes == tensor.numel() * tensor.element_size() and entry.shape == list(tensor.shape)


def test_delete_removes_exactly_one_rids_entries(tmp_path: object) -> None:
    store = SnapshotStore(f"{tmp_path}/del.lmdb")
    for rid in ("a", "b", 1, "z"):
        store.put_entries(rid, [("meta", b"m"), ("t/k0", b"k"), ("t/v0", b"v")])
    assert store.delete("z") == 3 and store.delete("a") == 3 and store.delete("a") == 0
    assert store.count_entries() == 6 and store.count_entries("b") == store.count_entries(1) == 3
    store.put_entries("b", [("meta", b"m2")])
    assert store.count_entries("b") == 1 and store.count_entries() == 4
    store.close()
