"""The context-window policies (error | truncate | summarize) and stop strings on a live kernel
with the tiny model: window 4096 tokens, byte-level tokenizer (1 ASCII char = 1 token)."""

from __future__ import annotations

import re

import pytest

from agents.sdk import KernelError

WINDOW = 4096
MAX_NEW = 16
ROOM = WINDOW - MAX_NEW  # what a prompt may use with MAX_NEW tokens still to come


def long_text(n: int) -> str:
    """n ASCII chars whose newest part differs from its oldest (so which end is kept matters)."""
    return "".join(chr(ord("a") + (i // 97) % 26) for i in range(n))


def count_tokens(client, prompt) -> int:
    """The kernel's own token count of a prompt, read from its CONTEXT_TOO_LONG message."""
    with pytest.raises(KernelError) as e:
        client.llm_generate(prompt=prompt, max_new_tokens=8192, context_policy="error")
    assert e.value.code == "CONTEXT_TOO_LONG"
    return int(re.search(r"prompt of (\d+) tokens", e.value.message).group(1))


def test_error_policy_refuses_and_says_how_to_fix(kernel):
    with kernel.client("ctx-error") as c:
        with pytest.raises(KernelError) as e:
            c.llm_generate(prompt=long_text(4200), max_new_tokens=MAX_NEW)  # error is the default
        assert e.value.code == "CONTEXT_TOO_LONG"
        assert "4200 tokens" in e.value.message and f"window of {WINDOW}" in e.value.message
        assert "'truncate'" in e.value.message and "'summarize'" in e.value.message
        assert c.proc_ping()["pong"] is True  # only that request failed


def test_truncate_keeps_the_newest_tokens_that_fit(kernel):
    text = long_text(4200)
    with kernel.client("ctx-truncate") as c:
        cut = c.llm_generate(prompt=text, max_new_tokens=MAX_NEW, context_policy="truncate")
        assert cut["prompt_tokens"] == ROOM and len(cut["token_ids"]) == MAX_NEW
        # the same as sending only the newest ROOM chars yourself (greedy is deterministic)
        newest = c.llm_generate(prompt=text[-ROOM:], max_new_tokens=MAX_NEW)
        assert newest["prompt_tokens"] == ROOM
        assert cut["token_ids"] == newest["token_ids"]


def test_truncate_drops_the_oldest_messages_but_keeps_the_system_message(kernel):
    system = {"role": "system", "content": "S" * 1000}
    body = [
        {"role": ("user", "assistant")[i % 2], "content": chr(ord("A") + i) * 500}
        for i in range(10)
    ]
    with kernel.client("ctx-chat") as c:
        full = count_tokens(c, [system, *body])
        assert full > ROOM
        # the kernel should keep the system message and the newest messages that fit with it
        kept = next(k for k in range(len(body)) if count_tokens(c, [system, *body[k:]]) <= ROOM)
        expected = count_tokens(c, [system, *body[kept:]])
        without_system = next(
            count_tokens(c, body[k:]) for k in range(len(body)) if count_tokens(c, body[k:]) <= ROOM
        )
        assert 0 < kept < len(body) and expected != without_system
        result = c.llm_generate(
            prompt=[system, *body], max_new_tokens=MAX_NEW, context_policy="truncate"
        )
    assert result["prompt_tokens"] == expected < full
    assert len(result["token_ids"]) == MAX_NEW


def test_summarize_runs_an_internal_request_first(kernel):
    with kernel.client("ctx-summary") as c:
        result = c.llm_generate(
            prompt=long_text(4200),
            max_new_tokens=MAX_NEW,
            context_policy="summarize",
            request_id="long",
        )
        rows = {r["rid"]: r for r in c.sched_stats(agent="ctx-summary")["requests"]}
    assert result["request_id"] == "ctx-summary/long" and len(result["token_ids"]) == MAX_NEW
    main, summary = rows["ctx-summary/long"], rows["ctx-summary/long#summary"]
    assert summary["agent"] == main["agent"] == "ctx-summary"
    assert summary["state"] == main["state"] == "finished"
    assert summary["finish"] <= main["first_scheduled"]
    assert result["prompt_tokens"] <= ROOM
    # summary + the newest half of the room (kernel/llm/prompt.py split_for_summary)
    assert result["prompt_tokens"] == summary["num_output_tokens"] + ROOM // 2


def test_a_prompt_that_fits_is_unaffected_by_the_policy(kernel):
    with kernel.client("ctx-fits") as c:
        results = [
            c.llm_generate(prompt="abc " * 100, max_new_tokens=24, context_policy=p)
            for p in ("error", "truncate", "summarize")
        ]
        rows = c.sched_stats(agent="ctx-fits")["requests"]
    assert {r["prompt_tokens"] for r in results} == {400}
    assert results[0]["token_ids"] == results[1]["token_ids"] == results[2]["token_ids"]
    assert not any("#summary" in r["rid"] for r in rows) and len(rows) == 3


def test_stop_string_trims_the_text(kernel):
    with kernel.client("ctx-stop") as c:
        free = c.llm_generate(prompt="abc", max_new_tokens=40)
        text = free["text"]
        # the first change of character: the stop string cannot occur before it
        i = next((j for j, ch in enumerate(text) if ch != text[0]), None)
        assert i is not None and i > 0 and text[i : i + 2].isprintable(), (
            f"greedy output unsuitable: {text!r}"
        )
        stop = text[i : i + 2]
        stopped = c.llm_generate(prompt="abc", max_new_tokens=40, stop=[stop])
    assert stopped["finish_reason"] == "stop" and free["finish_reason"] == "length"
    assert stopped["text"] == text[:i]
    assert stop not in stopped["text"]
    assert stopped["token_ids"] == free["token_ids"][: len(stopped["token_ids"])]
