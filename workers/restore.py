"""Swap a SeqState out to the SnapshotStore and back in, checked.

Contract: after `swap_out` returns the request has exactly one live snapshot; after a
successful `swap_in` it has none (the caller deletes it once the state is resident).
"""

from __future__ import annotations

from typing import Any

import torch

from syscalls.errors import ErrorCode, SyscallError
from workers.decoder import Decoder
from workers.kvcache import make_cache
from workers.snapshot import (
    check_fingerprint,
    decode_meta,
    decode_tensors,
    encode,
    invalid,
    state_from_meta,
    tensor_table,
)
from workers.state import SeqState
from workers.store import SnapshotStore

ON_INVALID = ("error", "recompute")


def swap_out(store: SnapshotStore, state: SeqState, mode: str, fingerprint: dict) -> int:
    """Write the snapshot of `state` (replacing any older one); returns its size in bytes."""
    return store.put_entries(state.rid, encode(state, mode, fingerprint))


def swap_in(
    store: SnapshotStore, decoder: Decoder, rid: Any, on_invalid: str = "error"
) -> tuple[SeqState, str]:
    """Rebuild a request from its snapshot. Returns (state, how): how is "swap" (exact KV),
    "drop" (re-prefilled by design) or "recompute" (re-prefilled because the snapshot was invalid
    and on_invalid="recompute"). Raises SyscallError(SNAPSHOT_INVALID) otherwise."""
    meta = decode_meta(store.get_meta(rid))  # without intact metadata nothing can be recovered
    try:
        return _restore_checked(store, decoder, rid, meta), meta["mode"]
    except SyscallError as exc:
        if on_invalid != "recompute" or exc.code != ErrorCode.SNAPSHOT_INVALID:
            raise
    state = state_from_meta(meta, decoder.device)
    state.pending_logits = decoder.reprefill(state)
    return state, "recompute"


def _restore_checked(store: SnapshotStore, decoder: Decoder, rid: Any, meta: dict) -> SeqState:
    check_fingerprint(meta, decoder.loaded.info.fingerprint)
    table = tensor_table(meta)
    arrays = store.get_arrays(rid, [t.name for t in table])
    tensors = decode_tensors(table, arrays, decoder.device)
    state = state_from_meta(meta, decoder.device)
    if "t/logits" not in tensors:
        raise invalid("snapshot has no pending logits")
    state.pending_logits = tensors["t/logits"]
    if meta["mode"] == "swap":
        state.cache = make_cache(_layers(tensors), decoder.model.config)
    else:
        decoder.reprefill(state)  # rebuild KV, keep the saved pending logits
    _check_shapes(state)
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
