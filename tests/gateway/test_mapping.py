"""The gateway's pure parts: OpenAI request bodies -> llm.generate arguments, and streamed text
whose deltas always concatenate to the kernel's final text (stop strings cut, partial characters
held back)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.gateway.errors import APIError
from agents.gateway.requests import parse
from agents.gateway.responses import TextStream

CHAT = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}


def test_chat_body_maps_to_generate_arguments_and_n_derives_seeds():
    gen = parse("chat", {**CHAT, "max_completion_tokens": 5, "temperature": 1, "seed": 7, "n": 3, "stop": "x",
                         "top_p": None, "presence_penalty": 0, "stream": True, "stream_options": {"include_usage": True}})
    assert gen.args == {"prompt": [{"role": "user", "content": "ab"}], "max_new_tokens": 5, "temperature": 1.0, "stop": ["x"]}
    assert gen.seeds == [7, 8, 9] and gen.is_stream and gen.include_usage
    assert gen.call_args(2, "lbl") == {**gen.args, "request_id": "lbl", "stream": True, "seed": 9}
    assert parse("completion", {"model": "m", "prompt": [[1, 2, 3]], "logprobs": 0}).args == {"prompt": [1, 2, 3], "logprobs": True}


@pytest.mark.parametrize(("kind", "body", "param", "code"), [
    ("chat", {"messages": []}, "model", "missing_required_parameter"),
    ("chat", {**CHAT, "best_of": 2}, "best_of", "unknown_parameter"),
    ("chat", {**CHAT, "frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
    ("chat", {**CHAT, "max_tokens": 3, "max_completion_tokens": 4}, "max_completion_tokens", "invalid_value"),
    ("chat", {**CHAT, "temperature": "hot"}, "temperature", "invalid_type"),
    ("chat", {**CHAT, "n": 0}, "n", "invalid_value"),
    ("chat", {**CHAT, "stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content",
     "unsupported_parameter"),
    ("completion", {"model": "m", "prompt": ["a", "b"]}, "prompt", "unsupported_parameter"),
    ("completion", {"model": "m", "prompt": "a", "logprobs": 2}, "logprobs", "unsupported_parameter"),
    ("completion", {"model": "m", "prompt": "a", "stop": [""]}, "stop", "invalid_value"),
])
def test_bad_bodies_name_their_parameter(kind, body, param, code):
    with pytest.raises(APIError) as err:
        parse(kind, body)
    assert (err.value.status, err.value.param, err.value.code) == (400, param, code)


@given(st.lists(st.text("ab\ufffdXY", max_size=4), max_size=8), st.lists(st.text("abXY", min_size=1, max_size=3), max_size=2))
def test_streamed_deltas_concatenate_to_the_final_text(chunks, stops):
    received = ""
    for n, chunk in enumerate(chunks):  # the kernel stops once the text holds a stop string
        received += chunk
        if any(s in received for s in stops):
            chunks = chunks[: n + 1]
            break
    cuts = [i for i in (received.find(s) for s in stops) if i >= 0]
    final = received[: min(cuts)] if cuts else received
    stream = TextStream(stops)
    sent = "".join(stream.add(chunk) for chunk in chunks)
    assert final.startswith(sent)
    assert sent + stream.finish(final) == final
