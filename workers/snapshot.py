"""Snapshot format: a SeqState <-> (one small meta value, one value per tensor), checked.

Format 4. meta value = META_HEADER (8 bytes, names the format) + xxh3_128 digest of body (16 bytes)
+ body; body = codec.pack of the dict built in `meta_body` (format version, fingerprint, params, token
ids, beams, RNG state, step counter and a table of tensors with dtype, shape, nbytes and the
xxh3_128 digest of the value). Tensors: `t/logits` (pending logits) and, in swap mode only,
`t/k<layer>` / `t/v<layer>` ([rows, kv_heads, seq, head_dim]), each stored as its raw bytes.
Format 4 adds the token log-probabilities (float32 bytes) to the body; the KV values are the same
[rows, kv_heads, tokens, head_dim] tensors whether they came from a DynamicCache or pool blocks.
(Format 1 used crc32, format 2 wrapped body and digest in a second msgpack map, format 3 had no
logprobs; all are refused, never misread.)
Anything that does not check out raises SyscallError(SNAPSHOT_INVALID): never a silently
wrong continuation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from syscalls import codec
from syscalls.digests import pack_float32, unpack_float32
from syscalls.errors import ErrorCode, SyscallError
from workers.checksum import ALGORITHM, DIGEST_BYTES, digest
from workers.kvcache import cache_layers
from workers.params import GenParams
from workers.sampling import generator_state, restore_generator
from workers.state import Hypothesis, SeqState

FORMAT_VERSION = 4
META_HEADER = b"aiosnap" + bytes([FORMAT_VERSION])
BODY_AT = len(META_HEADER) + DIGEST_BYTES
MODES = ("swap", "drop")
NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64}
DTYPE_NAMES = {t: str(t).removeprefix("torch.") for t in NUMPY_DTYPES}
NUMPY_BY_NAME = {DTYPE_NAMES[t]: n for t, n in NUMPY_DTYPES.items()}


@dataclass(slots=True)
class TensorEntry:
    name: str
    dtype: str
    shape: list[int]
    nbytes: int
    digest: bytes
    data: np.ndarray | None = None  # contiguous array of the bytes; absent in a table read back from meta

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape, "nbytes": self.nbytes, "digest": self.digest}


def invalid(message: str) -> SyscallError:
    return SyscallError(ErrorCode.SNAPSHOT_INVALID, message)


# -- encode ----------------------------------------------------------------------------------
def tensor_entry(name: str, tensor: torch.Tensor) -> TensorEntry:
    """Entry with the tensor's bytes (zero-copy for a contiguous CPU tensor); digest comes later."""
    dtype = DTYPE_NAMES.get(tensor.dtype)
    if dtype is not None and tensor.is_cpu and not tensor.requires_grad and tensor.is_contiguous():
        data = tensor.numpy()  # one view, shape kept: LMDB and xxhash read any contiguous buffer
    else:
        data = tensor.detach().contiguous().cpu().view(torch.uint8).reshape(-1).numpy()
        dtype = str(tensor.dtype).removeprefix("torch.")
    return TensorEntry(name, dtype, list(tensor.shape), data.nbytes, b"", data)


def state_tensors(state: SeqState, mode: str, layers: list | None = None) -> list[TensorEntry]:
    """Views of the tensors to save (their digests are set later). `layers`: the KV per layer as
    [rows, kv_heads, tokens, head_dim] pairs (default: the state's DynamicCache)."""
    entries = [tensor_entry("t/logits", state.pending_logits)]
    if mode == "swap":
        if layers is None:
            assert state.cache is not None, "swap needs a resident cache"
            layers = cache_layers(state.cache)
        for i, (keys, values) in enumerate(layers):
            entries += [tensor_entry(f"t/k{i}", keys), tensor_entry(f"t/v{i}", values)]
    return entries


def meta_body(state: SeqState, mode: str, fingerprint: dict, tensors: list[TensorEntry]) -> dict:
    return {
        "format": FORMAT_VERSION, "mode": mode, "rid": state.rid, "fingerprint": fingerprint,
        "params": state.params.to_wire(), "prompt_ids": state.prompt_ids, "seqs": state.seqs,
        "seed": state.seed, "num_steps": state.num_steps, "token_logprobs": pack_float32(state.token_logprobs),
        "generator_state": None if state.generator is None else generator_state(state.generator),
        "beam_scores": None if state.beam_scores is None else state.beam_scores.cpu().numpy().tobytes(),
        "finished_hyps": [[h.score, h.sum_logprob, h.ids, h.reason] for h in state.finished_hyps],
        "tensors": [t.to_wire() for t in tensors],
    }


def encode(state: SeqState, mode: str, fingerprint: dict) -> list[tuple[str, Any]]:
    """(name, bytes-like) entries of a snapshot, meta first (what swap_out writes, in one list)."""
    if mode not in MODES:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"evict mode {mode!r} not in {MODES}")
    tensors = state_tensors(state, mode)
    for entry in tensors:
        entry.digest = digest(entry.data)
    return [("meta", meta_value(state, mode, fingerprint, tensors))] + [(t.name, t.data) for t in tensors]


def meta_value(state: SeqState, mode: str, fingerprint: dict, tensors: list[TensorEntry]) -> bytes:
    """The meta value (header, digest, body) for tensors whose digests are set."""
    body = codec.pack(meta_body(state, mode, fingerprint, tensors))
    return META_HEADER + digest(body) + body


# -- decode ----------------------------------------------------------------------------------
def decode_meta(raw: bytes | None) -> dict:
    if raw is None:
        raise invalid("no snapshot")
    if raw[: len(META_HEADER)] != META_HEADER:
        raise invalid(f"snapshot metadata is not format {FORMAT_VERSION} ({ALGORITHM} checksum)")
    body = raw[BODY_AT:]
    if digest(body) != raw[len(META_HEADER) : BODY_AT]:
        raise invalid("snapshot metadata checksum mismatch")
    try:
        meta = codec.unpack(body)
    except SyscallError as exc:
        raise invalid(f"snapshot metadata unreadable: {exc.message}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise invalid(f"snapshot metadata malformed or not format {FORMAT_VERSION}")
    return meta


def check_fingerprint(meta: dict, fingerprint: dict) -> None:
    theirs = meta.get("fingerprint") or {}
    if theirs == fingerprint:
        return
    diff = sorted(k for k in set(theirs) | set(fingerprint) if theirs.get(k) != fingerprint.get(k))
    if diff:
        raise invalid("fingerprint mismatch on " + ", ".join(f"{k}: {theirs.get(k)!r} != {fingerprint.get(k)!r}" for k in diff))


def tensor_table(meta: dict) -> list[TensorEntry]:
    return [TensorEntry(t["name"], t["dtype"], list(t["shape"]), t["nbytes"], t["digest"]) for t in meta["tensors"]]


def verify_value(entry: TensorEntry, data: np.ndarray | None) -> None:
    """The value is present, has its length and the digest the metadata recorded."""
    if data is None:
        raise invalid(f"snapshot value {entry.name} is missing")
    if data.nbytes != entry.nbytes:
        raise invalid(f"snapshot value {entry.name} has {data.nbytes} bytes, expected {entry.nbytes}")
    if digest(data) != entry.digest:
        raise invalid(f"snapshot value {entry.name} fails its checksum")


def as_tensors(table: list[TensorEntry], arrays: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """Views of verified private copies as typed tensors (a copy only if device is not CPU)."""
    is_cpu = device.type == "cpu"
    return {e.name: _as_tensor(e, arrays[e.name], device, is_cpu) for e in table}


def _as_tensor(entry: TensorEntry, data: Any, device: torch.device, is_cpu: bool) -> torch.Tensor:
    try:
        numpy_dtype = NUMPY_BY_NAME.get(entry.dtype)
        if numpy_dtype is not None and is_cpu:
            return torch.from_numpy(data.view(numpy_dtype).reshape(entry.shape))
        return torch.from_numpy(data).view(getattr(torch, entry.dtype)).reshape(entry.shape).to(device)
    except (AttributeError, RuntimeError, TypeError, ValueError) as exc:
        raise invalid(f"snapshot value {entry.name}: {exc}") from None


def state_from_meta(meta: dict, device: torch.device, pending_logits: torch.Tensor | None = None) -> SeqState:
    """Everything but the cache (and the pending logits unless given): the caller fills those."""
    try:
        beam = meta["beam_scores"]
        gen = meta["generator_state"]
        return SeqState(
            rid=meta["rid"], params=GenParams.from_wire(meta["params"]),
            prompt_ids=list(meta["prompt_ids"]), seqs=[list(s) for s in meta["seqs"]],
            pending_logits=torch.empty(0) if pending_logits is None else pending_logits,
            cache=None, seed=int(meta["seed"]),
            generator=None if gen is None else restore_generator(gen, device),
            beam_scores=None if beam is None else torch.frombuffer(bytearray(beam), dtype=torch.float32).to(device),
            finished_hyps=[Hypothesis(h[0], h[1], list(h[2]), h[3]) for h in meta["finished_hyps"]],
            num_steps=int(meta["num_steps"]), token_logprobs=unpack_float32(meta["token_logprobs"]),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, SyscallError) as exc:
        raise invalid(f"snapshot metadata inconsistent: {exc}") from None
