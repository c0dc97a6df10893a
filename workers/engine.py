"""WorkerEngine: executes kernel plans against resident requests (pure apart from the model
and the SnapshotStore; no sockets). The process loop (workers/process.py) is thin over it.

Contract: one engine per worker process, called from its main loop only. An error on one
request becomes that request's `{code, message}` and never escapes `execute_plan`.
Message shapes: docs/architecture.md (EvictResult, LoadResult, SeqResult, plan_done).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syscalls.errors import ErrorCode, SyscallError
from syscalls.worker_messages import (
    CheckpointSpec,
    EvictResult,
    EvictSpec,
    LoadResult,
    LoadSpec,
    PlanDone,
    PlanRequest,
    SeqResult,
)
from workers.decoder import Decoder
from workers.kvpool import DEFAULT_POOL_BYTES
from workers.model import LoadedModel
from workers.native_arch import unsupported_reason
from workers.native_decoder import NativeDecoder
from workers.params import GenParams
from workers.restore import swap_in, swap_out
from workers.results import evict_result, load_result, seq_error, seq_result
from workers.state import SeqState
from workers.store import SnapshotStore

OnStep = Callable[[], None]


@dataclass(slots=True)
class EngineConfig:
    worker_id: int = 0
    max_batch_rows: int = 16  # beam requests count num_beams rows
    on_invalid: str = "error"  # or "recompute"
    record_scores: bool = False  # tests only: per-step logit digests in SeqResult.step_scores
    engine: str = "native"  # "native" (own batch-invariant forward, paged pool) or "hf"
    kv_pool_bytes: int = DEFAULT_POOL_BYTES  # the native engine's KV pool


def make_decoder(loaded: LoadedModel, config: EngineConfig) -> Decoder:
    """The native decoder where the architecture has one (and it was asked for), else generic."""
    if config.engine == "native" and unsupported_reason(loaded.model) is None:
        return NativeDecoder(loaded, config.kv_pool_bytes, record_scores=config.record_scores)
    return Decoder(loaded, record_scores=config.record_scores)


def guarded(fn: Callable[[], Any]) -> tuple[Any, dict | None]:
    """Run fn; turn any exception into a wire error (INTERNAL for unexpected ones)."""
    try:
        return fn(), None
    except SyscallError as exc:
        return None, exc.to_wire()
    except Exception as exc:  # one request's bug must not kill the worker
        traceback.print_exc(file=sys.stderr)
        return None, {"code": ErrorCode.INTERNAL.value, "message": f"{type(exc).__name__}: {exc}"}


class WorkerEngine:
    def __init__(self, loaded: LoadedModel, store: SnapshotStore, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        self.loaded = loaded
        self.store = store
        self.decoder = make_decoder(loaded, self.config)
        self.fingerprint = self.decoder.fingerprint
        self.resident: dict[Any, SeqState] = {}

    def execute_plan(self, plan: dict, on_step: OnStep | None = None) -> dict:
        """Execute a `plan` map (PlanRequest); returns its `plan_done` map (PlanDone)."""
        return self.execute(PlanRequest.from_wire(plan), on_step).to_wire()

    def execute(self, plan: PlanRequest, on_step: OnStep | None = None) -> PlanDone:
        tick = on_step or (lambda: None)
        t_start = time.monotonic()
        evicted = [self._each(self.evict, spec, tick) for spec in plan.evict]
        load_errors: dict[Any, dict] = {}
        loaded = [self._each(lambda s: self.load(s, load_errors), spec, tick) for spec in plan.load]
        results = self.decode(plan.decode, plan.steps, tick, load_errors)
        checkpointed = [self._each(self.checkpoint, spec, tick) for spec in plan.checkpoint]
        return PlanDone(self.config.worker_id, plan.plan_id, t_start, time.monotonic(), evicted, loaded, results, checkpointed)

    @staticmethod
    def _each(fn: Callable[[Any], Any], spec: Any, tick: OnStep) -> Any:
        result = fn(spec)
        tick()
        return result

    # -- evict -----------------------------------------------------------------------------
    def evict(self, spec: EvictSpec) -> EvictResult:
        """On failure the request stays resident (nothing is lost)."""
        t0 = time.perf_counter()
        nbytes, error = guarded(lambda: self._evict(spec.rid, spec.mode))
        return evict_result(spec.rid, nbytes or 0, time.perf_counter() - t0, error)

    def _evict(self, rid: Any, mode: str) -> int:
        state = self._resident(rid)
        layers = self.decoder.kv_layers(state) if mode == "swap" else None
        nbytes = swap_out(self.store, state, mode, self.fingerprint, layers=layers)
        self.decoder.release(self.resident.pop(rid))
        return nbytes

    def checkpoint(self, spec: CheckpointSpec) -> EvictResult:
        """Snapshot a resident request (KV included) under spec.key; it stays resident."""
        t0 = time.perf_counter()

        def write() -> int:
            state = self._resident(spec.rid)
            return swap_out(self.store, state, "swap", self.fingerprint, layers=self.decoder.kv_layers(state), key=spec.key)

        nbytes, error = guarded(write)
        return evict_result(spec.rid, nbytes or 0, time.perf_counter() - t0, error)

    # -- load ------------------------------------------------------------------------------
    def load(self, spec: LoadSpec, load_errors: dict[Any, dict] | None = None) -> LoadResult:
        t0 = time.perf_counter()
        done, error = guarded(lambda: self._load(spec))
        if error is not None and load_errors is not None:
            load_errors[spec.rid] = error
        state, how, prefilled = done if done else (None, None, 0)
        return load_result(spec.rid, spec.mode, state, how, prefilled, time.perf_counter() - t0, error)

    def _load(self, spec: LoadSpec) -> tuple[SeqState, str, int]:
        rid, mode = spec.rid, spec.mode
        if rid in self.resident:
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"request {rid!r} is already resident")
        if mode == "prefill":
            params = GenParams.from_wire(spec.params)
            state = self.decoder.prefill(rid, list(spec.prompt_ids or []), params)
            how, prefilled = "prefill", len(state.prompt_ids)
        elif mode == "restore":
            source = rid if spec.source is None else spec.source
            state, how = swap_in(self.store, self.decoder, source, self.config.on_invalid)
            state.rid = rid
            prefilled = 0 if how == "swap" else state.num_tokens * state.num_rows
            if spec.source is None:
                self.store.delete(rid)  # resident again: no live snapshot (a checkpoint is kept)
        else:
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"load mode {mode!r}")
        state.step_scores = [] if self.config.record_scores else None
        self.resident[rid] = state
        return state, how, prefilled

    # -- decode ----------------------------------------------------------------------------
    def decode(
        self, rids: list[Any], steps: int, tick: OnStep, load_errors: dict[Any, dict] | None = None
    ) -> list[SeqResult]:
        load_errors = load_errors or {}
        rids = list(dict.fromkeys(rids))
        results: dict[Any, SeqResult] = {}
        for rid in rids:
            if rid not in self.resident:
                results[rid] = seq_error(rid, load_errors.get(rid) or self._not_resident(rid))
        live = [self.resident[r] for r in rids if r in self.resident]
        wanted = set(id(s) for s in live)
        prefill_only = [s for s in self.resident.values() if s.pending_prefill and id(s) not in wanted]
        for index, chunk in enumerate(self._chunks(live) or [[]]):
            results.update(self._decode_chunk(chunk, steps, tick, prefill_only if index == 0 else []))
        return [results[r] for r in rids]

    def _chunks(self, states: list[SeqState]) -> list[list[SeqState]]:
        chunks: list[list[SeqState]] = [[]]
        rows = 0
        for state in states:
            need = max(state.params.num_beams, 1)
            if chunks[-1] and rows + need > self.config.max_batch_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append(state)
            rows += need
        return [c for c in chunks if c]

    def _decode_chunk(self, chunk: list[SeqState], steps: int, tick: OnStep, prefill_only: list[SeqState]) -> dict[Any, SeqResult]:
        """Decode one batch (and finish the prefill of loaded requests nobody decodes yet)."""
        before = {s.rid: (len(s.seqs[0]), s.num_steps) for s in chunk}
        if not chunk and not prefill_only:
            return {}
        _, error = guarded(lambda: self.decoder.decode(chunk, steps, tick, prefill_only))
        if error is not None:
            self.free([s.rid for s in prefill_only])  # a failed prefill: gone, a later decode says so
        results = {}
        for state in chunk:
            if error is not None:  # state may be half-stepped: forget it
                self.free([state.rid])
                results[state.rid] = seq_error(state.rid, error)
                continue
            results[state.rid] = seq_result(state, *before[state.rid])
            if state.step_scores is not None:
                state.step_scores = []
            if state.is_finished:
                self.free([state.rid])
        return results

    # -- free / helpers --------------------------------------------------------------------
    def free(self, rids: list[Any]) -> None:
        """Forget requests: drop resident state and delete all their LMDB entries."""
        for rid in rids:
            state = self.resident.pop(rid, None)
            if state is not None:
                self.decoder.release(state)
            _, error = guarded(lambda r=rid: self.store.delete(r))
            if error is not None:
                print(f"worker {self.config.worker_id}: free {rid!r}: {error}", file=sys.stderr)

    def _resident(self, rid: Any) -> SeqState:
        if rid not in self.resident:
            raise self._not_resident_error(rid)
        return self.resident[rid]

    def _not_resident_error(self, rid: Any) -> SyscallError:
        return SyscallError(ErrorCode.NOT_FOUND, f"request {rid!r} is not resident on worker {self.config.worker_id}")

    def _not_resident(self, rid: Any) -> dict:
        return self._not_resident_error(rid).to_wire()

    def check_integrity(self) -> None:
        """Resident requests are unfinished, hold a cache, and have no live snapshot."""
        for rid, state in self.resident.items():
            assert not state.is_finished and state.cache is not None, rid
            assert self.store.count_entries(rid) == 0, f"resident {rid!r} still has a snapshot"
        self.decoder.check_integrity(list(self.resident.values()))
