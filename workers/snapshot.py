"""Snapshot format: a SeqState <-> (one small meta value, one value per tensor), checked.

Format 2. meta value = codec.pack({"body": bytes, "checksum": "xxh3_128", "digest": 16 bytes});
body = codec.pack of the dict built in `meta_body` (format version, fingerprint, params, token
ids, beams, RNG state, step counter and a table of tensors with dtype, shape, nbytes and the
xxh3_128 digest of the value). Tensors: `t/logits` (pending logits) and, in swap mode only,
`t/k<layer>` / `t/v<layer>` ([rows, kv_heads, seq, head_dim]), each stored as its raw bytes.
(Format 1 used crc32; it is refused, never misread.)
Anything that does not check out raises SyscallError(SNAPSHOT_INVALID): never a silently
wrong continuation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from syscalls import codec
from syscalls.errors import ErrorCode, SyscallError
from workers.checksum import ALGORITHM, digest, digests
from workers.kvcache import cache_layers
from workers.params import GenParams
from workers.sampling import generator_state
from workers.state import Hypothesis, SeqState

FORMAT_VERSION = 2
MODES = ("swap", "drop")
NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}


@dataclass(slots=True)
class TensorEntry:
    name: str
    dtype: str
    shape: list[int]
    nbytes: int
    digest: bytes
    data: np.ndarray | None = None  # uint8 bytes; absent in a table read back from meta

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape, "nbytes": self.nbytes, "digest": self.digest}


def invalid(message: str) -> SyscallError:
    return SyscallError(ErrorCode.SNAPSHOT_INVALID, message)


# -- encode ----------------------------------------------------------------------------------
def tensor_entry(name: str, tensor: torch.Tensor) -> TensorEntry:
    """Entry with the tensor's bytes (zero-copy for a contiguous CPU tensor); digest comes later."""
    if tensor.device.type == "cpu" and tensor.is_contiguous() and tensor.dtype in NUMPY_DTYPES:
        data = tensor.detach().numpy().reshape(-1).view(np.uint8)  # numpy views: ~2x cheaper than torch's
    else:
        data = tensor.detach().contiguous().cpu().view(torch.uint8).reshape(-1).numpy()
    dtype = str(tensor.dtype).removeprefix("torch.")
    return TensorEntry(name, dtype, list(tensor.shape), int(data.nbytes), b"", data)


def state_tensors(state: SeqState, mode: str) -> list[TensorEntry]:
    """Views of the tensors to save (digests come from sign_tensors)."""
    entries = [tensor_entry("t/logits", state.pending_logits)]
    if mode == "swap":
        assert state.cache is not None, "swap needs a resident cache"
        for i, (keys, values) in enumerate(cache_layers(state.cache)):
            entries += [tensor_entry(f"t/k{i}", keys), tensor_entry(f"t/v{i}", values)]
    return entries


def sign_tensors(tensors: list[TensorEntry]) -> None:
    for entry, value_digest in zip(tensors, digests([e.data for e in tensors]), strict=True):
        entry.digest = value_digest


def meta_body(state: SeqState, mode: str, fingerprint: dict, tensors: list[TensorEntry]) -> dict:
    return {
        "format": FORMAT_VERSION, "mode": mode, "rid": state.rid, "fingerprint": fingerprint,
        "params": state.params.to_wire(), "prompt_ids": state.prompt_ids, "seqs": state.seqs,
        "seed": state.seed, "num_steps": state.num_steps,
        "generator_state": None if state.generator is None else generator_state(state.generator),
        "beam_scores": None if state.beam_scores is None else state.beam_scores.cpu().numpy().tobytes(),
        "finished_hyps": [[h.score, h.sum_logprob, h.ids, h.reason] for h in state.finished_hyps],
        "tensors": [t.to_wire() for t in tensors],
    }


def encode(state: SeqState, mode: str, fingerprint: dict) -> list[tuple[str, Any]]:
    """(name, bytes-like) entries of a snapshot, meta first."""
    if mode not in MODES:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"evict mode {mode!r} not in {MODES}")
    tensors = state_tensors(state, mode)
    sign_tensors(tensors)
    return encode_signed(state, mode, fingerprint, tensors)


def encode_signed(state: SeqState, mode: str, fingerprint: dict, tensors: list[TensorEntry]) -> list[tuple[str, Any]]:
    """Entries for tensors that sign_tensors has digested: the meta value, then each tensor."""
    body = codec.pack(meta_body(state, mode, fingerprint, tensors))
    meta = codec.pack({"body": body, "checksum": ALGORITHM, "digest": digest(body)})
    return [("meta", meta)] + [(t.name, t.data) for t in tensors]


# -- decode ----------------------------------------------------------------------------------
def decode_meta(raw: bytes | None) -> dict:
    if raw is None:
        raise invalid("no snapshot")
    try:
        outer = codec.unpack(raw)
        body = outer["body"]
        if outer.get("checksum") != ALGORITHM:
            raise invalid(f"snapshot checksum {outer.get('checksum')!r} != {ALGORITHM!r} (format != {FORMAT_VERSION})")
        if digest(body) != outer["digest"]:
            raise invalid("snapshot metadata checksum mismatch")
        meta = codec.unpack(body)
    except SyscallError as exc:
        raise invalid(f"snapshot metadata unreadable: {exc.message}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise invalid(f"snapshot metadata malformed: {exc}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise invalid(f"snapshot format {meta.get('format')} != {FORMAT_VERSION}")
    return meta


def check_fingerprint(meta: dict, fingerprint: dict) -> None:
    theirs = meta.get("fingerprint") or {}
    diff = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
    if diff:
        raise invalid("fingerprint mismatch on " + ", ".join(f"{k}: {theirs.get(k)!r} != {fingerprint.get(k)!r}" for k in diff))


def tensor_table(meta: dict) -> list[TensorEntry]:
    return [TensorEntry(t["name"], t["dtype"], list(t["shape"]), t["nbytes"], t["digest"]) for t in meta["tensors"]]


def verify_values(table: list[TensorEntry], arrays: dict[str, np.ndarray | None]) -> None:
    """Every value in the table is present, has its length and the digest the metadata recorded."""
    for entry in table:
        data = arrays.get(entry.name)
        if data is None:
            raise invalid(f"snapshot value {entry.name} is missing")
        if data.nbytes != entry.nbytes:
            raise invalid(f"snapshot value {entry.name} has {data.nbytes} bytes, expected {entry.nbytes}")
    for entry, value_digest in zip(table, digests([arrays[e.name] for e in table]), strict=True):
        if value_digest != entry.digest:
            raise invalid(f"snapshot value {entry.name} fails its checksum")


def as_tensors(table: list[TensorEntry], arrays: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """Views of verified private copies as typed tensors (a copy only if device is not CPU)."""
    return {e.name: _as_tensor(e, arrays[e.name], device) for e in table}


def _as_tensor(entry: TensorEntry, data: Any, device: torch.device) -> torch.Tensor:
    try:
        dtype = getattr(torch, entry.dtype)
        if dtype in NUMPY_DTYPES and device.type == "cpu":
            return torch.from_numpy(data.view(NUMPY_DTYPES[dtype]).reshape(entry.shape))
        return torch.from_numpy(data).view(dtype).reshape(entry.shape).to(device)
    except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
        raise invalid(f"snapshot value {entry.name}: {exc}") from None


def state_from_meta(meta: dict, device: torch.device) -> SeqState:
    """Everything but cache and pending logits (the caller fills those)."""
    from workers.sampling import restore_generator

    try:
        beam = meta["beam_scores"]
        gen = meta["generator_state"]
        return SeqState(
            rid=meta["rid"], params=GenParams.from_wire(meta["params"]),
            prompt_ids=list(meta["prompt_ids"]), seqs=[list(s) for s in meta["seqs"]],
            pending_logits=torch.empty(0), cache=None, seed=int(meta["seed"]),
            generator=None if gen is None else restore_generator(gen, device),
            beam_scores=None if beam is None else torch.frombuffer(bytearray(beam), dtype=torch.float32).to(device),
            finished_hyps=[Hypothesis(h[0], h[1], list(h[2]), h[3]) for h in meta["finished_hyps"]],
            num_steps=int(meta["num_steps"]),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, SyscallError) as exc:
        raise invalid(f"snapshot metadata inconsistent: {exc}") from None
