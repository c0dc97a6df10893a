"""Storage: versions, tombstones, rollback, search, reserved keys, and survival across reopen."""

from __future__ import annotations

import pytest

from syscalls.errors import ErrorCode, SyscallError


def codes(fn, *args, **kwargs) -> ErrorCode:
    with pytest.raises(SyscallError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_put_creates_versions_and_get_reads_any(harness):
    assert harness.call("a", "storage.put", key="k", value={"v": 1}) == {"version": 1}
    assert harness.call("a", "storage.put", key="k", value={"v": 2}) == {"version": 2}
    assert harness.call("a", "storage.get", key="k") == {"value": {"v": 2}, "version": 2}
    assert harness.call("a", "storage.get", key="k", version=1) == {"value": {"v": 1}, "version": 1}
    assert codes(harness.call, "a", "storage.get", key="k", version=3) == ErrorCode.NOT_FOUND


def test_delete_is_a_tombstone_and_rollback_undoes_it(harness):
    harness.call("a", "storage.put", key="k", value="first")
    assert harness.call("a", "storage.delete", key="k") == {"deleted": True, "version": 2}
    assert harness.call("a", "storage.delete", key="k") == {"deleted": False, "version": None}
    assert codes(harness.call, "a", "storage.get", key="k") == ErrorCode.NOT_FOUND
    assert codes(harness.call, "a", "storage.get", key="k", version=2) == ErrorCode.NOT_FOUND
    assert harness.call("a", "storage.list") == {"keys": []}
    versions = harness.call("a", "storage.versions", key="k")["versions"]
    assert [(v["version"], v["is_deleted"]) for v in versions] == [(1, False), (2, True)]
    assert harness.call("a", "storage.rollback", key="k", version=1) == {"version": 3}
    assert harness.call("a", "storage.get", key="k") == {"value": "first", "version": 3}
    assert codes(harness.call, "a", "storage.rollback", key="k", version=9) == ErrorCode.NOT_FOUND
    harness.services.check_integrity()


def test_namespaces_are_separate_and_list_filters_by_prefix(harness):
    harness.call("a", "storage.put", key="notes/1", value="x")
    harness.call("a", "storage.put", key="notes/2", value="y")
    harness.call("a", "storage.put", key="other", value="z")
    harness.call("ab", "storage.put", key="notes/3", value="w")
    keys = [k["key"] for k in harness.call("a", "storage.list", prefix="notes/")["keys"]]
    assert keys == ["notes/1", "notes/2"]
    assert [k["key"] for k in harness.call("ab", "storage.list")["keys"]] == ["notes/3"]
    assert codes(harness.call, "ab", "storage.get", key="other") == ErrorCode.NOT_FOUND


def test_search_ranks_by_matched_terms_over_live_values(harness):
    harness.call("a", "storage.put", key="p1", value={"genre": "jazz", "city": "Paris"})
    harness.call("a", "storage.put", key="p2", value=["jazz", "blues"])
    harness.call("a", "storage.put", key="p3", value="rock in Paris")
    harness.call("a", "storage.delete", key="p3")
    harness.call("b", "storage.put", key="p4", value="jazz paris")
    hits = harness.call("a", "storage.search", query="Jazz paris")["hits"]
    assert [(h["key"], h["score"]) for h in hits] == [("p1", 1.0), ("p2", 0.5)]
    assert "jazz" in hits[0]["snippet"]
    assert harness.call("a", "storage.search", query="jazz", limit=1)["hits"][0]["key"] == "p1"


def test_reserved_prefix_and_oversized_keys_are_rejected(harness):
    assert (
        codes(harness.call, "a", "storage.put", key="__mem__/x", value=1)
        == ErrorCode.INVALID_ARGUMENT
    )
    with pytest.raises(SyscallError, match="field 'key'"):
        harness.call("a", "storage.put", key="é" * 256, value=1)


def test_storage_and_versions_survive_reopen(harness):
    harness.call("a", "storage.put", key="k", value=[1, 2, 3])
    harness.call("a", "storage.put", key="k", value="two")
    harness.call("a", "storage.delete", key="k")
    harness.call("b", "storage.put", key="big", value=b"\x00" * 300_000)
    harness.reopen()
    assert len(harness.call("a", "storage.versions", key="k")["versions"]) == 3
    assert harness.call("a", "storage.rollback", key="k", version=1) == {"version": 4}
    assert harness.call("a", "storage.get", key="k")["value"] == [1, 2, 3]
    assert len(harness.call("b", "storage.get", key="big")["value"]) == 300_000
    harness.services.check_integrity()


def test_map_grows_when_full(harness):
    for i in range(40):  # 40 x 1 MB > the 16 MiB initial map
        harness.call("a", "storage.put", key=f"k{i}", value=b"x" * (1 << 20))
    assert len(harness.call("a", "storage.list")["keys"]) == 40
    assert harness.services.storage.store.env.info()["map_size"] > 16 << 20
