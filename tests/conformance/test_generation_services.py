"""docs/protocol.md sections 4-6 (generation, limits, services) against a live kernel through raw
ZeroMQ + MessagePack; the examples of the generated reference are replayed where deterministic."""

from __future__ import annotations

import pytest

from tests.conformance.rawclient import DOC, Raw, doc_example

TIMING = {"arrival", "first_scheduled", "first_token", "finish", "waiting_s", "queued_s", "turnaround_s",
          "ttft_s", "preemptions", "num_slices"}
TIMELINE = TIMING | {"rid", "agent", "state", "num_output_tokens", "output_tokens", "slices", "preemption_s",
                     "snapshot_durations_s", "restore_durations_s"}
ENDED = {"output_sha256", "logprobs_sha256", "prompt_tokens", "finish_reason", "error"}


def generate(agent, **args) -> dict:
    return agent.ok("llm.generate", {"prompt": "conformance", "max_new_tokens": 12, **args})


# ---- 4. generation ------------------------------------------------------------------------
def test_llm_info_describes_the_model_and_its_bounds(agent):
    info = agent.ok("llm.info")
    _, example = doc_example("llm.info")
    assert set(info) == set(example["result"])
    assert info["engine"] in ("native", "hf") and isinstance(info["batch_invariant"], bool)
    vocab, window = info["vocab_size"], info["context_window"]
    assert generate(agent, prompt=[vocab - 1, 0], max_new_tokens=1)["prompt_tokens"] == 2
    err = agent.error("llm.generate", {"prompt": [vocab]})
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith("field 'prompt': ")
    assert agent.error("llm.generate", {"prompt": [1] * window, "max_new_tokens": 1})["code"] == "CONTEXT_TOO_LONG"
    assert generate(agent, prompt=[1] * (window - 1), max_new_tokens=1)["prompt_tokens"] == window - 1


def test_result_fields_and_timing(agent):
    result = generate(agent, logprobs=True)
    assert set(result) == {"request_id", "text", "token_ids", "logprobs", "finish_reason", "prompt_tokens", "timing"}
    assert set(result["timing"]) == TIMING and len(result["logprobs"]) == len(result["token_ids"])
    err = agent.error("llm.generate", {"prompt": "x", "logprobs": True, "num_beams": 2})
    assert err["code"] == "INVALID_ARGUMENT" and "'logprobs'" in err["message"]


def test_scheduling_arguments_steer_only(agent):
    plain = generate(agent)
    steered = generate(agent, priority=5, expected_tokens=3, program_id="plan-1")
    assert steered["token_ids"] == plain["token_ids"]  # a hint ranks a request, it never cuts or changes it
    err = agent.error("llm.generate", {"prompt": "x", "program_id": "a b"})
    assert err["code"] == "INVALID_ARGUMENT" and "'program_id'" in err["message"]
    assert agent.error("llm.generate", {"prompt": "x", "expected_tokens": 0})["code"] == "INVALID_ARGUMENT"


def test_stop_token_is_the_last_output_token(agent):
    free = generate(agent)["token_ids"]
    stop_id = free[3]
    result = generate(agent, stop_token_ids=[stop_id])
    assert result["finish_reason"] == "stop" and result["token_ids"][-1] == stop_id
    assert result["token_ids"] == free[: free.index(stop_id) + 1]


def test_stop_string_ends_the_output_but_not_the_text(agent):
    free = generate(agent, max_new_tokens=24)
    text = free["text"]
    stop = text[len(text) // 2: len(text) // 2 + 2]
    assert stop.strip(), f"tiny model gave text {text!r}"
    result = generate(agent, max_new_tokens=24, stop=[stop])
    assert result["finish_reason"] == "stop" and stop not in result["text"]
    assert text.startswith(result["text"]) and free["token_ids"][: len(result["token_ids"])] == result["token_ids"]


def test_sched_stats_timelines_have_the_documented_fields(agent):
    rid = generate(agent, max_new_tokens=2)["request_id"]
    stats = agent.ok("sched.stats", {"agent": agent.name})
    rows = [r for r in stats["requests"] if r["rid"] == rid]
    assert len(rows) == 1 and set(rows[0]) >= TIMELINE | ENDED and rows[0]["state"] == "finished"
    assert stats["agents"][agent.name]["num_requests"] >= 1 and "`rid` (the request" in DOC


# ---- 6. services --------------------------------------------------------------------------
@pytest.mark.parametrize("calls", [("mem.put", "mem.list", "mem.get", "mem.search", "mem.delete"),
                                   ("storage.put", "storage.list", "storage.versions", "storage.get",
                                    "storage.search", "storage.delete", "storage.rollback"),
                                   ("tool.call", "access.grant", "access.revoke")])
def test_doc_examples_give_the_documented_results(kernel, agent, calls):
    grantee = Raw(kernel.address)
    if "access.grant" in calls:
        grantee.register(doc_example("access.grant")[0]["args"]["grantee"])  # a grantee has an identity
    grantee.close()
    for call in calls:
        request, reply = doc_example(call)
        result = agent.ok(call, request["args"])
        expected = reply["result"]
        if call == "storage.versions":
            result["versions"][0]["time"] = expected["versions"][0]["time"]
        if call == "access.grant":
            expected = {"grant_id": result["grant_id"]}  # ids are the kernel's
        assert result == expected, call


def test_storage_tombstones_and_reserved_keys(agent):
    agent.ok("storage.put", {"key": "t", "value": 1})
    assert agent.ok("storage.delete", {"key": "t"}) == {"deleted": True, "version": 2}
    assert agent.error("storage.get", {"key": "t"})["code"] == "NOT_FOUND"
    rows = agent.ok("storage.versions", {"key": "t"})["versions"]
    assert [(r["version"], r["is_deleted"], r["bytes"]) for r in rows] == [(1, False, 1), (2, True, 0)]
    err = agent.error("storage.put", {"key": "__mem__/x", "value": 1})
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith("field 'key': ")


def test_tools_validate_in_the_kernel(agent):
    names = {t["name"] for t in agent.ok("tool.list")["tools"]}
    assert {"calculator", "unit_convert", "datetime", "storage_search"} <= names
    assert agent.error("tool.call", {"name": "no_such_tool"})["code"] == "NOT_FOUND"
    err = agent.error("tool.call", {"name": "calculator", "args": {}})
    assert err["code"] == "INVALID_ARGUMENT" and "expression" in err["message"]
    assert agent.error("tool.call", {"name": "calculator", "args": {"expression": "1/0"}})["code"] == "TOOL_ERROR"


def test_other_agents_data_needs_a_live_grant_and_denials_are_audited(kernel, agent):
    peer, name = Raw(kernel.address), agent.name
    try:
        peer.register("conf-peer")
        agent.ok("storage.put", {"key": "diary", "value": "secret"})
        assert peer.error("storage.get", {"key": "diary", "owner": name})["code"] == "PERMISSION_DENIED"
        events = peer.ok("audit.query", {"event": "deny"})["events"]
        assert events[-1]["agent"] == "conf-peer" and events[-1]["target"] == name
        agent.ok("access.grant", {"grantee": "conf-peer", "resource": "storage"})
        assert peer.ok("storage.get", {"key": "diary", "owner": name})["value"] == "secret"
        agent.ok("access.revoke", {"grantee": "conf-peer", "resource": "storage"})
        assert peer.error("storage.get", {"key": "diary", "owner": name})["code"] == "PERMISSION_DENIED"
    finally:
        peer.close()
