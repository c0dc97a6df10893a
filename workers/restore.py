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
from workers.checksum import digest
from workers.decoder import Decoder
from workers.snapshot import (
    as_tensors,
    check_fingerprint,
    decode_meta,
    invalid,
    meta_value,
    state_from_meta,
    state_tensors,
    tensor_table,
    verify_value,
)
from workers.state import SeqState
from workers.store import SnapshotStore

ON_INVALID = ("error", "recompute")


class StageTimes:
    """Seconds per stage: each `lap(name)` adds the time since the previous lap to `name`;
    `move` re-books time measured inside a lap to another stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

    def move(self, source: str, target: str, seconds: float) -> None:
        self.seconds[source] = self.seconds.get(source, 0.0) - seconds
        self.seconds[target] = self.seconds.get(target, 0.0) + seconds


def swap_out(
    store: SnapshotStore, state: SeqState, mode: str, fingerprint: dict, times: StageTimes | None = None,
    layers: list | None = None, key: Any = None,
) -> int:
    """Write the snapshot of `state` under `key` (default: its rid), replacing any older one, in
    one write transaction;
    returns its size in bytes. Each tensor is digested right before its put, while its bytes
    are in cache; the metadata with every digest goes last. Stages: serialize, checksum, put."""
    times = times or StageTimes()
    tensors = state_tensors(state, mode, layers)
    times.lap("serialize")
    serializing = 0.0

    def meta_of(digests: list[bytes]) -> bytes:
        nonlocal serializing
        t0 = time.perf_counter()
        for entry, value_digest in zip(tensors, digests, strict=True):
            entry.digest = value_digest
        meta = meta_value(state, mode, fingerprint, tensors)
        serializing += time.perf_counter() - t0
        return meta

    nbytes, signing = store.put_signed(state.rid if key is None else key, [(t.name, t.data) for t in tensors], digest, meta_of)
    times.lap("put")
    times.move("put", "checksum", signing)
    times.move("put", "serialize", serializing)
    return nbytes


def swap_in(
    store: SnapshotStore, decoder: Decoder, rid: Any, on_invalid: str = "error", times: StageTimes | None = None
) -> tuple[SeqState, str]:
    """Rebuild a request from its snapshot. Returns (state, how): how is "swap" (exact KV),
    "drop" (re-prefilled by design) or "recompute" (re-prefilled because the snapshot was invalid
    and on_invalid="recompute"). Raises SyscallError(SNAPSHOT_INVALID) otherwise.
    Every value is verified (length, digest) right after it is copied, while it is in cache."""
    times = times or StageTimes()
    checked: dict[str, Any] = {}
    verifying = 0.0

    def names_of(raw: bytes) -> list[str]:
        """Inside the read txn: decode and check the metadata, name the values to copy."""
        meta = checked["meta"] = decode_meta(raw)  # without intact metadata nothing can be recovered
        try:
            check_fingerprint(meta, decoder.fingerprint)
            checked["table"] = tensor_table(meta)
        except SyscallError as exc:
            checked["error"] = exc
            return []
        checked["by_name"] = {entry.name: entry for entry in checked["table"]}
        return list(checked["by_name"])

    def check(name: str, data: Any) -> None:
        nonlocal verifying
        t0 = time.perf_counter()
        try:
            verify_value(checked["by_name"][name], data)
        finally:
            verifying += time.perf_counter() - t0

    try:
        raw, arrays = store.read_snapshot(rid, names_of, check)
    except SyscallError as exc:
        if "meta" not in checked:
            raise  # the metadata itself is bad
        checked["error"], raw, arrays = exc, b"", {}
    if raw is None:
        decode_meta(None)  # raises: no snapshot
    times.lap("get")
    times.move("get", "verify", verifying)
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
    """After the read verified every value: rebuild."""
    if len(arrays) != len(table):
        raise invalid("snapshot values do not match its table")  # e.g. two entries with one name
    tensors = as_tensors(table, arrays, decoder.device)
    if "t/logits" not in tensors:
        raise invalid("snapshot has no pending logits")
    state = state_from_meta(meta, decoder.device, tensors["t/logits"])
    if state.pending_logits.shape[0] != state.num_rows:
        raise invalid("pending logits rows != number of beams")
    if meta["mode"] == "swap":
        layers = _layers(tensors)
        _check_shapes(state, layers)
        state.cache = decoder.cache_from_layers(layers)
    else:
        decoder.reprefill(state)  # rebuild KV, keep the saved pending logits
    times.lap("rebuild")
    return state


def _layers(tensors: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    num_layers = sum(1 for name in tensors if name.startswith("t/k"))
    return [(tensors[f"t/k{i}"], tensors[f"t/v{i}"]) for i in range(num_layers)]


def _check_shapes(state: SeqState, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    expected = (state.num_rows, state.num_tokens)
    if not layers or any(k.dim() != 4 or v.shape != k.shape or (k.shape[0], k.shape[2]) != expected for k, v in layers):
        raise invalid("cache shape does not match the saved token ids")
