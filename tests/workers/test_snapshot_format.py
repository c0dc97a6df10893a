"""Snapshot format 4: xxh3_128 digests catch any flipped byte; older formats are refused; the
switch benchmark keeps its JSON contract."""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syscalls import codec
from syscalls.errors import ErrorCode, SyscallError
from workers.checksum import digest
from workers.snapshot import FORMAT_VERSION, META_HEADER, decode_meta


@given(data=st.binary(min_size=1, max_size=4096), at=st.integers(0, 4095), mask=st.integers(1, 255))
def test_any_single_byte_change_changes_the_digest(data: bytes, at: int, mask: int) -> None:
    flipped = bytearray(data)
    flipped[at % len(data)] ^= mask
    assert digest(bytes(flipped)) != digest(data)


def test_every_byte_flip_of_a_value_is_detected() -> None:
    value = bytes(range(256)) * 8
    original = digest(value)
    for at in range(len(value)):
        flipped = bytearray(value)
        flipped[at] ^= 0x80
        assert digest(flipped) != original, at


def test_digest_reads_buffers_in_place() -> None:
    data = bytes(range(256)) * 1000
    assert digest(memoryview(data)) == digest(bytearray(data)) == digest(data)


def test_format_1_crc32_metadata_is_refused() -> None:
    body = codec.pack({"format": 1, "tensors": []})
    with pytest.raises(SyscallError, match="checksum"):
        decode_meta(codec.pack({"body": body, "crc32": zlib.crc32(body)}))
    assert FORMAT_VERSION == 4


def test_format_3_metadata_without_logprobs_is_refused() -> None:
    body = codec.pack({"format": 3, "tensors": []})
    with pytest.raises(SyscallError, match="not format 4") as info:
        decode_meta(b"aiosnap" + bytes([3]) + digest(body) + body)
    assert info.value.code == ErrorCode.SNAPSHOT_INVALID


def test_format_2_wrapped_metadata_is_refused() -> None:
    body = codec.pack({"format": 2, "tensors": []})
    with pytest.raises(SyscallError, match="checksum") as info:
        decode_meta(codec.pack({"body": body, "checksum": "xxh3_128", "digest": digest(body)}))
    assert info.value.code == ErrorCode.SNAPSHOT_INVALID


@given(at=st.integers(0, 200), mask=st.integers(1, 255))
def test_any_change_to_format_4_metadata_is_refused(at: int, mask: int) -> None:
    body = codec.pack({"format": FORMAT_VERSION, "tensors": [], "prompt_ids": list(range(50))})
    raw = bytearray(META_HEADER + digest(body) + body)
    assert decode_meta(bytes(raw))["prompt_ids"] == list(range(50))
    raw[at % len(raw)] ^= mask
    with pytest.raises(SyscallError) as info:
        decode_meta(bytes(raw))
    assert info.value.code == ErrorCode.SNAPSHOT_INVALID


def test_switch_benchmark_json_contract(tmp_path: Path) -> None:
    from benchmarks.switch import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    out = tmp_path / "switch.json"
    args = parser.parse_args(["--models", "tiny", "--contexts", "16", "--repeats", "1", "--json", str(out)])
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    for key in ("model", "context", "kv_bytes", "snapshot_restore_s", "recompute_s", "ratio", "snapshot_mb_s", "raw_lmdb_mb_s"):
        assert key in row
    assert set(row["breakdown_s"]) == {"serialize", "checksum", "put", "get", "verify", "rebuild", "delete"}
    assert set(row["raw_breakdown_s"]) == {"put", "get", "delete"}
    assert row["context"] == 16 and row["ratio_ok"] is None and isinstance(row["bandwidth_ok"], bool)
    assert report["raw_lmdb"] and report["targets"]["max_ratio"] == 0.10
