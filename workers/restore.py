"""Swap a SeqState out to the SnapshotStore and back in, checked.

Contract: after `swap_out` returns the request has exactly one live snapshot; after a
successful `swap_in` it has none (the caller deletes it once the state is resident).
Both take an optional StageTimes that accumulates seconds per stage (benchmarks, profiling).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from syscalls.errors import ErrorCode, SyscallError
from workers.decoder import Decoder
from workers.kvcache import make_cache
from workers.snapshot import (
    as_tensors,
    check_fingerprint,
    decode_meta,
    encode_signed,
    invalid,
    sign_tensors,
    state_from_meta,
    state_tensors,
    tensor_table,
    verify_values,
)
from workers.state import SeqState
from workers.store import SnapshotStore

ON_INVALID = ("error", "recompute")


class StageTimes:
    """Seconds per stage: each `lap(name)` adds the time since the previous lap to `name`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def swap_out(store: SnapshotStore, state: SeqState, mode: str, fingerprint: dict, times: StageTimes | None = None) -> int:
    """Write the snapshot of `state` (replacing any older one) in one write transaction;
    returns its size in bytes. Stages: serialize, checksum, put."""
    times = times or StageTimes()
    tensors = state_tensors(state, mode)
    times.lap("serialize")
    sign_tensors(tensors)
    times.lap("checksum")
    entries = encode_signed(state, mode, fingerprint, tensors)
    times.lap("serialize")
    nbytes = store.put_entries(state.rid, entries)
    times.lap("put")
    return nbytes


def swap_in(
    store: SnapshotStore, decoder: Decoder, rid: Any, on_invalid: str = "error", times: StageTimes | None = None
) -> tuple[SeqState, str]:
    """Rebuild a request from its snapshot. Returns (state, how): how is "swap" (exact KV),
    "drop" (re-prefilled by design) or "recompute" (re-prefilled because the snapshot was invalid
    and on_invalid="recompute"). Raises SyscallError(SNAPSHOT_INVALID) otherwise."""
    times = times or StageTimes()
    checked: dict[str, Any] = {}

    def names_of(raw: bytes) -> list[str]:
        """Inside the read txn: decode and check the metadata, name the values to copy."""
        meta = checked["meta"] = decode_meta(raw)  # without intact metadata nothing can be recovered
        try:
            check_fingerprint(meta, decoder.loaded.info.fingerprint)
            checked["table"] = tensor_table(meta)
        except SyscallError as exc:
            checked["error"] = exc
            return []
        return [t.name for t in checked["table"]]

    raw, arrays = store.read_snapshot(rid, names_of)
    if raw is None:
        decode_meta(None)  # raises: no snapshot
    times.lap("get")
    meta = checked["meta"]
    try:
        if "error" in checked:
            raise checked["error"]
        return _restore_checked(decoder, meta, checked["table"], arrays, times), meta["mode"]
    except SyscallError as exc:
        if on_invalid != "recompute" or exc.code != ErrorCode.SNAPSHOT_INVALID:
            raise
    state = state_from_meta(meta, decoder.device)
    state.pending_logits = decoder.reprefill(state)
    return state, "recompute"


def _restore_checked(decoder: Decoder, meta: dict, table: list, arrays: dict, times: StageTimes) -> SeqState:
    """Stages after the read: verify (lengths, digests), rebuild."""
    verify_values(table, arrays)
    times.lap("verify")
    tensors = as_tensors(table, arrays, decoder.device)
    if "t/logits" not in tensors:
        raise invalid("snapshot has no pending logits")
    state = state_from_meta(meta, decoder.device, tensors["t/logits"])
    if meta["mode"] == "swap":
        state.cache = make_cache(_layers(tensors), decoder.model.config)
    else:
        decoder.reprefill(state)  # rebuild KV, keep the saved pending logits
    _check_shapes(state)
    times.lap("rebuild")
    return state


def _layers(tensors: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    num_layers = sum(1 for name in tensors if name.startswith("t/k"))
    return [(tensors[f"t/k{i}"], tensors[f"t/v{i}"]) for i in range(num_layers)]


def _check_shapes(state: SeqState) -> None:
    rows = state.num_rows
    if state.pending_logits.shape[0] != rows:
        raise invalid("pending logits rows != number of beams")
    keys = state.cache.layers[0].keys if state.cache is not None else None
    if keys is None or keys.shape[0] != rows or keys.shape[2] != state.num_tokens:
        raise invalid("cache shape does not match the saved token ids")
