"""docs/protocol.md sections 4-6 continued, through raw ZeroMQ + MessagePack: memory quota and
LRU eviction, audit ordering and filters, chat prompts and context policies."""

from __future__ import annotations

from tests.conformance.rawclient import Raw, pack

QUOTA = 1 << 20  # the documented default --mem-quota
ENTRY = "x" * 60_000  # under the conformance kernel's 64 KiB message limit


def entry_bytes(key: str, value: object) -> int:
    return len(pack(value)) + len(key)  # section 6: len(msgpack(value)) + len(key)


def test_memory_evicts_least_recently_used_entries_to_storage(agent):
    size = entry_bytes("m00", ENTRY)
    fits = QUOTA // size
    for i in range(fits):
        assert agent.ok("mem.put", {"key": f"m{i:02d}", "value": ENTRY}) == {"bytes": size, "evicted": []}
    assert agent.ok("mem.get", {"key": "m00"})["was_evicted"] is False  # a get is a use: m01 is now the LRU
    assert agent.ok("mem.put", {"key": "new", "value": ENTRY})["evicted"] == ["m01"]
    listing = agent.ok("mem.list")
    assert listing["quota_bytes"] == QUOTA and listing["used_bytes"] == fits * size
    assert {e["key"]: e["is_resident"] for e in listing["entries"]}["m01"] is False
    assert agent.ok("storage.list")["keys"] == []  # evicted memory is hidden from storage.*
    assert agent.ok("mem.get", {"key": "m01"}) == {"value": ENTRY, "was_evicted": True}


def test_audit_is_ordered_filtered_and_private(kernel, agent):
    peer = Raw(kernel.address)
    try:
        peer.register(f"{agent.name}-peer")
        for mode in ("read", "write", "readwrite"):
            agent.ok("access.grant", {"grantee": peer.name, "resource": "memory", "mode": mode})
        events = agent.ok("audit.query", {"event": "grant", "limit": 2})["events"]
        assert [e["detail"] for e in events] == ["write", "readwrite"]  # the newest 2, oldest first
        assert events[0]["seq"] < events[1]["seq"] and events[0]["time"] <= events[1]["time"]
        assert set(events[0]) == {"seq", "time", "event", "agent", "target", "resource", "detail"}
        since = agent.ok("audit.query", {"since": events[1]["time"], "event": "grant"})["events"]
        assert since and all(e["time"] >= events[1]["time"] for e in since)
        shared = agent.ok("audit.query", {"agent": peer.name, "limit": 1000})["events"]  # events naming both
        assert len(shared) == 3 and peer.ok("audit.query", {"agent": agent.name, "limit": 1000})["events"] == shared
        assert all(peer.name in (e["agent"], e["target"]) for e in peer.ok("audit.query", {"limit": 1000})["events"])
    finally:
        peer.close()


def test_chat_prompts_and_context_policies(agent):
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert agent.ok("llm.generate", {"prompt": chat, "max_new_tokens": 2})["prompt_tokens"] > 2
    err = agent.error("llm.generate", {"prompt": [{"role": "user"}]})
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith("field 'prompt")
    window = agent.ok("llm.info")["context_window"]
    long = [7] * (window + 10)
    assert agent.error("llm.generate", {"prompt": long, "max_new_tokens": 4})["code"] == "CONTEXT_TOO_LONG"
    result = agent.ok("llm.generate", {"prompt": long, "max_new_tokens": 4, "context_policy": "truncate"})
    assert result["prompt_tokens"] == window - 4 and len(result["token_ids"]) == 4
