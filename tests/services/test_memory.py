"""Memory: quota, LRU eviction to storage, transparent get/list/search/delete, freed on exit.
The harness quota is 100 bytes; an entry's size is len(pack(value)) + len(key)."""

from __future__ import annotations

import pytest

from kernel.services.memory import entry_size
from syscalls.codec import pack
from syscalls.errors import ErrorCode, SyscallError

VALUE = "x" * 28  # pack -> 29 bytes; with a 2-char key an entry is 31 bytes: 3 fit in 100


def test_entry_size_is_packed_value_plus_key(harness):
    assert harness.call("a", "mem.put", key="k1", value=VALUE) == {"bytes": 31, "evicted": []}
    assert entry_size("k1", pack(VALUE)) == 31


def test_lru_entry_is_evicted_to_storage_and_found_again(harness):
    for key in ("k1", "k2", "k3"):
        harness.call("a", "mem.put", key=key, value=VALUE + key)
    harness.call("a", "mem.get", key="k1")  # k1 is now most recent: k2 is the LRU
    assert harness.call("a", "mem.put", key="k4", value=VALUE)["evicted"] == ["k2"]
    assert harness.services.storage.stash_size("a") == 1
    listing = harness.call("a", "mem.list")
    assert {e["key"]: e["is_resident"] for e in listing["entries"]} == {
        "k1": True,
        "k2": False,
        "k3": True,
        "k4": True,
    }
    assert listing["used_bytes"] <= listing["quota_bytes"] == 100
    assert harness.call("a", "mem.get", key="k2") == {"value": VALUE + "k2", "was_evicted": True}
    assert harness.call("a", "mem.get", key="k2")["was_evicted"] is False
    assert harness.services.memory.used_bytes("a") <= 100
    harness.services.check_integrity()


def test_evicted_entries_are_hidden_from_storage_calls(harness):
    for i in range(5):
        harness.call("a", "mem.put", key=f"k{i}", value=VALUE)
    assert harness.services.storage.stash_size("a") == 2
    assert harness.call("a", "storage.list") == {"keys": []}
    assert harness.call("a", "storage.search", query="x" * 28) == {"hits": []}


def test_search_and_delete_reach_evicted_entries(harness):
    harness.call("a", "mem.put", key="trip", value="plan a trip to Lisbon")
    for i in range(4):
        harness.call("a", "mem.put", key=f"f{i}", value=VALUE)
    assert not _resident(harness, "a")["trip"]
    assert harness.call("a", "mem.search", query="lisbon trip")["hits"] == [
        {"key": "trip", "score": 1.0}
    ]
    assert harness.call("a", "mem.delete", key="trip") == {"deleted": True}
    assert harness.call("a", "mem.delete", key="trip") == {"deleted": False}
    with pytest.raises(SyscallError) as info:
        harness.call("a", "mem.get", key="trip")
    assert info.value.code == ErrorCode.NOT_FOUND
    harness.services.check_integrity()


def test_value_larger_than_quota_is_refused(harness):
    with pytest.raises(SyscallError) as info:
        harness.call("a", "mem.put", key="big", value="y" * 200)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    assert harness.call("a", "mem.list")["entries"] == []


def test_overwrite_replaces_size_and_unstashes(harness):
    for i in range(4):
        harness.call("a", "mem.put", key=f"k{i}", value=VALUE)
    harness.call("a", "mem.put", key="k0", value=1)  # k0 was evicted: now resident, small
    assert _resident(harness, "a")["k0"] is True
    assert harness.call("a", "mem.get", key="k0") == {"value": 1, "was_evicted": False}
    harness.services.check_integrity()


def test_memory_freed_on_exit_including_evicted(harness):
    for i in range(5):
        harness.call("a", "mem.put", key=f"k{i}", value=VALUE)
    harness.call("b", "mem.put", key="kb", value=VALUE)
    harness.services.on_agent_exit("a")
    assert harness.call("a", "mem.list")["entries"] == []
    assert harness.services.storage.stash_size("a") == 0
    assert harness.call("b", "mem.get", key="kb")["value"] == VALUE


def test_stash_of_a_previous_kernel_run_is_dropped_on_open(harness):
    for i in range(5):
        harness.call("a", "mem.put", key=f"k{i}", value=VALUE)
    harness.reopen()
    assert harness.services.storage.store.count("memstash") == 0
    assert harness.call("a", "mem.list")["entries"] == []


def _resident(harness, owner: str) -> dict[str, bool]:
    return {e["key"]: e["is_resident"] for e in harness.call(owner, "mem.list")["entries"]}


def test_a_grant_does_not_reach_the_memory_of_an_agent_that_exited(harness):
    """Grants outlive agents, memory does not: writing to a stopped agent's memory would
    plant entries nobody frees (found by a live-kernel test)."""
    import pytest

    from syscalls.errors import SyscallError

    harness.call("a", "access.grant", grantee="b", resource="memory", mode="readwrite")
    assert harness.call("b", "mem.put", key="x", value=1, owner="a")["bytes"] > 0
    harness.services.on_agent_exit("a")
    harness.stopped.add("a")
    for call, args in (("mem.put", {"key": "planted", "value": 1}), ("mem.list", {}), ("mem.get", {"key": "x"})):
        with pytest.raises(SyscallError) as e:
            harness.call("b", call, owner="a", **args)
        assert e.value.code.value == "NOT_FOUND"
    harness.stopped.discard("a")  # a new agent named "a" registers: it starts empty
    assert harness.call("a", "mem.list")["entries"] == []
