"""The gateway with the official `openai` client, in front of a real kernel and worker: models,
chat and completions (streamed or not) equal to the SDK's output for a seed, two API keys as two
agents, OpenAI-shaped errors, a client that disconnects cancelling its request, and /metrics."""

from __future__ import annotations

import threading

import httpx2 as httpx  # the HTTP client the openai package is built on
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.sdk import Client
from tests.kernelproc import wait_for

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime."}]
SAMPLING = {"temperature": 1.0, "top_p": 0.9, "seed": 11}


_clients: list[openai.OpenAI] = []  # closed when the module's tests are done (their pooled connections)


def api(gateway, key: str) -> openai.OpenAI:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=60)
    _clients.append(client)
    return client


@pytest.fixture(scope="module", autouse=True)
def _close_clients():
    yield
    while _clients:
        _clients.pop().close()


@pytest.fixture(scope="module")
def sdk(gw_kernel):
    with Client(gw_kernel.address, name="gw-sdk", secret_file=False) as c:
        yield c


@pytest.fixture(scope="module")
def model(sdk) -> str:
    return sdk.llm_info()["model_id"]


def token_ids(logprobs: list) -> list[int]:
    return [int(entry.token.removeprefix("token_id:")) for entry in logprobs]


def test_models_list_shows_the_kernels_model(gateway, keys, model):
    assert [m.id for m in api(gateway, keys["gw-alice"]).models.list()] == [model]


def test_chat_is_the_sdks_output_for_the_same_seed_and_n_derives_seeds(gateway, keys, sdk, model):
    reply = api(gateway, keys["gw-alice"]).chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=12, logprobs=True, n=2, user="u 1", **SAMPLING)
    for i, choice in enumerate(reply.choices):
        want = sdk.llm_generate(prompt=MESSAGES, max_new_tokens=12, logprobs=True, **{**SAMPLING, "seed": 11 + i})
        assert choice.message.content == want["text"] and choice.index == i
        assert token_ids(choice.logprobs.content) == want["token_ids"]
        assert [e.logprob for e in choice.logprobs.content] == want["logprobs"]
        assert choice.finish_reason == "length"
    assert reply.choices[0].logprobs.content != reply.choices[1].logprobs.content  # seeds 11 and 12
    streamed = api(gateway, keys["gw-alice"]).chat.completions.create(
        model=model, messages=MESSAGES, max_tokens=12, n=2, stream=True, **SAMPLING)
    texts = ["", ""]
    for chunk in streamed:
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
    assert texts == [c.message.content for c in reply.choices]
    assert reply.usage.prompt_tokens == want["prompt_tokens"]
    assert reply.usage.completion_tokens == 24 and reply.usage.total_tokens == 24 + want["prompt_tokens"]
    extra = reply.model_extra["aiosim"]
    assert extra["agent"] == "gw-alice"
    assert [r["request_id"] for r in extra["requests"]] == [f"gw-alice/gw.u_1.{reply.id.split('.')[-1]}.{i}" for i in (0, 1)]
    assert all(r["turnaround_s"] >= r["waiting_s"] >= 0 for r in extra["requests"])


def test_streamed_chat_and_completions_concatenate_to_the_sdks_text(gateway, keys, sdk, model):
    client = api(gateway, keys["gw-alice"])
    want = sdk.llm_generate(prompt=MESSAGES, max_new_tokens=16, logprobs=True, **SAMPLING)
    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, max_completion_tokens=16, stream=True,
                                                 logprobs=True, stream_options={"include_usage": True}, **SAMPLING))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == want["text"]
    finals = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and token_ids(finals[0].logprobs.content) == want["token_ids"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    prompt = "Once upon a time"
    want = sdk.llm_generate(prompt=prompt, max_new_tokens=10, **SAMPLING)
    whole = client.completions.create(model=model, prompt=prompt, max_tokens=10, **SAMPLING)
    assert whole.choices[0].text == want["text"] and whole.usage.prompt_tokens == want["prompt_tokens"]
    streamed = list(client.completions.create(model=model, prompt=prompt, max_tokens=10, stream=True, **SAMPLING))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == want["text"]
    assert streamed[-1].usage is None  # no include_usage


def test_stop_strings_are_cut_from_streamed_and_whole_text(gateway, keys, sdk, model):
    base = sdk.llm_generate(prompt="abc", max_new_tokens=24, **SAMPLING)["text"]
    stop = base[5:7]  # a string the output will contain
    want = sdk.llm_generate(prompt="abc", max_new_tokens=24, stop=[stop], **SAMPLING)
    assert want["finish_reason"] == "stop" and stop not in want["text"]
    client = api(gateway, keys["gw-alice"])
    whole = client.completions.create(model=model, prompt="abc", max_tokens=24, stop=stop, **SAMPLING)
    assert (whole.choices[0].text, whole.choices[0].finish_reason) == (want["text"], "stop")
    streamed = client.completions.create(model=model, prompt="abc", max_tokens=24, stop=[stop], stream=True, **SAMPLING)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == want["text"]


def test_two_keys_are_two_agents_each_registered_once(gateway, keys, operator, model):
    def ask(key: str, i: int) -> None:
        stream = api(gateway, key).chat.completions.create(model=model, messages=MESSAGES, max_tokens=6, stream=True,
                                                           user=f"conc{i}")
        assert list(stream)[-1].choices == []

    threads = [threading.Thread(target=ask, args=(keys[name], i)) for i in range(3) for name in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    agents = [a["name"] for a in operator.proc_ps()["agents"]]
    assert agents.count("gw-alice") == 1 and agents.count("gw-bob") == 1
    stats = operator.sched_stats()["requests"]
    for name in keys:
        rows = [r for r in stats if r["rid"].startswith(f"{name}/gw.conc")]
        assert len(rows) == 3 and {r["agent"] for r in rows} == {name}
        assert all(r["state"] == "finished" for r in rows)


def test_errors_have_openais_shape_and_status(gateway, keys, operator, model):
    client = api(gateway, keys["gw-bob"])
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert e.value.body == {"message": e.value.body["message"], "type": "invalid_request_error", "param": "model",
                            "code": "model_not_found"}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=MESSAGES, temperature=500)  # the kernel's bound
    assert (e.value.status_code, e.value.body["param"], e.value.body["code"]) == (400, "temperature", "invalid_argument")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=model, messages=MESSAGES, extra_body={"best_of": 3})
    assert (e.value.body["param"], e.value.body["code"]) == ("best_of", "unknown_parameter")
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=model, prompt="hi", max_tokens=5000)
    assert (e.value.body["param"], e.value.body["code"]) == ("prompt", "context_length_exceeded")
    with pytest.raises(openai.BadRequestError):  # before any token: the response's own status, streamed or not
        client.completions.create(model=model, prompt="hi", max_tokens=5000, stream=True)
    with pytest.raises(openai.AuthenticationError) as e:
        api(gateway, "not-a-secret").chat.completions.create(model=model, messages=MESSAGES)
    assert (e.value.status_code, e.value.body["code"], e.value.body["type"]) == (401, "invalid_api_key", "authentication_error")
    assert "identity.whoami" in operator.audit_query(event="bad_secret")["events"][-1]["detail"]
    raw = httpx.post(f"{gateway.base_url}/chat/completions", content=b"{not json",
                     headers={"Authorization": f"Bearer {keys['gw-bob']}"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    assert client.models.list().data  # the gateway still serves


@pytest.mark.parametrize("is_stream", [True, False])
def test_a_client_that_disconnects_cancels_its_request(gateway, keys, operator, model, is_stream):
    body = {"model": model, "prompt": "long", "max_tokens": 3000, "stream": is_stream, "user": f"gone{is_stream}"}
    headers = {"Authorization": f"Bearer {keys['gw-bob']}"}
    with httpx.Client(timeout=httpx.Timeout(60, read=None if is_stream else 1.0)) as http:
        if is_stream:
            with http.stream("POST", f"{gateway.base_url}/completions", json=body, headers=headers) as response:
                assert response.status_code == 200
                next(response.iter_lines())  # the request runs; then the connection closes
        else:
            with pytest.raises(httpx.ReadTimeout):
                http.post(f"{gateway.base_url}/completions", json=body, headers=headers)

    def ended() -> dict | None:
        rows = [r for r in operator.sched_stats(agent="gw-bob")["requests"] if f"/gw.gone{is_stream}." in r["rid"]]
        return rows[0] if rows and rows[0]["state"] not in ("waiting", "ready", "running", "cancelling") else None

    row = wait_for(ended, 30, "the request to end")
    assert row["state"] == "cancelled" and row["num_output_tokens"] < 3000


def test_metrics_count_requests_tokens_and_kv(gateway, keys, model):
    api(gateway, keys["gw-alice"]).completions.create(model=model, prompt="count me", max_tokens=4)
    text = httpx.get(f"{gateway.base_url.removesuffix('/v1')}/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("aiosim_gateway_requests_total", (("endpoint", "completion"),))] >= 1
    assert samples[("aiosim_gateway_tokens_total", (("kind", "completion"),))] >= 4
    assert samples[("aiosim_gateway_turnaround_seconds_count", ())] >= 1
    assert samples[("aiosim_kernel_kv_budget_bytes", (("worker", "0"),))] > 0
    assert samples[("aiosim_kernel_requests", (("state", "finished"),))] >= 1


def test_a_removed_identitys_key_stops_working(gateway, operator, model):
    client = api(gateway, operator.identity_add(name="gw-carol")["secret"])
    assert client.completions.create(model=model, prompt="hi", max_tokens=2).choices[0].finish_reason == "length"
    assert operator.identity_remove(name="gw-carol")["removed"]
    for _ in range(2):  # its registered agent was retired; then the key belongs to no identity
        with pytest.raises(openai.AuthenticationError):
            client.completions.create(model=model, prompt="hi", max_tokens=2)


def test_the_benchs_lean_client_streams_on_one_kept_alive_connection(gateway, keys, model):
    """`aiosim bench gateway`'s http path: the first chunk comes after the kernel's first token, the
    usage counts every token, and the second request reuses the first one's connection."""
    from benchmarks.gateway import LeanClient

    client = LeanClient(gateway.base_url, keys["gw-bob"], model, 12)
    try:
        ttft, tokens, kernel_ttft = client.ask("Once upon a time")
        sock = client.conn.sock
        assert sock is not None and tokens == 12 and ttft >= kernel_ttft > 0
        again = client.ask("Twice upon a time")
        assert again[1] == 12 and client.conn.sock is sock
    finally:
        client.close()
