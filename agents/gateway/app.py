"""The gateway's HTTP endpoints (Starlette): OpenAI's API in, syscalls out (docs/gateway.md).

Owner: the event loop thread, which also runs the KernelBridge (every kernel call goes through it). A client that
disconnects before its answer is complete has its requests cancelled (llm.cancel).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from agents.gateway import responses
from agents.gateway.bridge import KernelBridge
from agents.gateway.errors import APIError, from_kernel
from agents.gateway.metrics import GatewayMetrics
from agents.gateway.requests import Generation, parse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """The HTTP client disconnected."""


GONE = (-1, "gone", None)  # a run's event once its client has disconnected


class EventStream(Response):
    """Server-sent events, each piece written as soon as the run yields it, the first chunk right
    behind the headers, with no task of its own in between (Starlette's StreamingResponse starts a
    task group and a second disconnect listener per response, which put the first chunk a few event
    loop turns behind the headers). The run's own disconnect watch ends the stream (Gateway._next)."""

    media_type = "text/event-stream"

    def __init__(self, pieces: AsyncGenerator[str, None]) -> None:
        self.pieces, self.status_code, self.background = pieces, 200, None
        self.init_headers(SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for piece in self.pieces:
                await send({"type": "http.response.body", "body": piece.encode(), "more_body": True})
        except ClientGone:
            return  # nobody to tell: the run's requests are cancelled (Gateway._stream's finally)
        finally:
            await self.pieces.aclose()  # (a send that raised: the run's finally still cancels what is open)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass(slots=True)
class Run:
    """The n llm.generate calls of one HTTP request; their events arrive on `events`."""

    gen: Generation
    key: str
    labels: list[str]
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    results: dict[int, dict] = field(default_factory=dict)

    def is_open(self, index: int) -> bool:
        return index not in self.results

    def on_event(self, index: int):
        return lambda kind, payload: self.events.put_nowait((index, kind, payload))


class Gateway:
    def __init__(self, bridge: KernelBridge, metrics: GatewayMetrics) -> None:
        self.bridge, self.metrics = bridge, metrics
        self.model_id: str | None = None

    # ---- endpoints ----
    async def models(self, request: Request) -> Response:
        await self._agent(request)
        model = await self._model()
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "aiosim"}]})

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, "completion")

    async def scrape(self, request: Request) -> Response:
        stats = await self.bridge.call("sched.stats")
        return Response(self.metrics.render(stats), media_type=self.metrics.content_type)

    # ---- generation ----
    async def _generate(self, request: Request, kind: str) -> Response:
        key, agent = await self._agent(request)
        gen = parse(kind, await _json_body(request))
        model = await self._model()
        if gen.model != model:
            raise APIError(404, f"the model '{gen.model}' does not exist (this gateway serves '{model}')",
                           "invalid_request_error", "model", "model_not_found")
        base = f"{_label(gen.user)}{secrets.token_hex(6)}"
        run = Run(gen, key, [base if gen.n == 1 else f"{base}.{i}" for i in range(gen.n)])
        env = responses.Envelope(gen, ("chatcmpl-" if kind == "chat" else "cmpl-") + base, agent)
        for i, label in enumerate(run.labels):
            self.bridge.generate(key, gen.call_args(i, label), run.on_event(i))  # events come back on this loop
        watch = asyncio.ensure_future(_disconnected(request, run))
        try:
            first = await self._next(run)
            if first[1] == "reply":
                self._take(run, first)  # an error before any token is the response's own status
        except BaseException:
            watch.cancel()
            self._cancel_open(run)
            raise
        if gen.is_stream:
            return EventStream(self._stream(run, env, first, watch))
        return await self._collect(run, env, first, watch)

    async def _collect(self, run: Run, env: responses.Envelope, first: tuple, watch: asyncio.Future) -> Response:
        try:
            event = first
            while True:
                self._take(run, event)
                if len(run.results) == run.gen.n:
                    break
                event = await self._next(run)
        finally:
            watch.cancel()
            self._cancel_open(run)
        results = [run.results[i] for i in range(run.gen.n)]
        self.metrics.observe(run.gen.kind, results)
        return JSONResponse(responses.full_response(env, results))

    async def _stream(self, run: Run, env: responses.Envelope, first: tuple, watch: asyncio.Future) -> AsyncGenerator[str, None]:
        texts = [responses.TextStream(run.gen.stops) for _ in run.labels]
        is_first = [True] * run.gen.n
        event = first
        try:
            while True:
                index, kind, payload = event
                if kind == "stream":
                    delta = texts[index].add(payload.get("text") or "")
                    if delta or is_first[index]:
                        yield _sse(responses.delta_chunk(env, index, delta, is_first=is_first[index]))
                        is_first[index] = False
                else:
                    try:
                        result = self._take(run, event)
                    except APIError as err:
                        yield _sse(err.body())
                        return
                    rest = texts[index].finish(result["text"])
                    final = _sse(responses.delta_chunk(env, index, rest, result=result, is_first=is_first[index]))
                    if len(run.results) == run.gen.n:
                        break
                    yield final
                event = await self._next(run)
            results = [run.results[i] for i in range(run.gen.n)]
            self.metrics.observe(run.gen.kind, results)
            yield final + _sse(responses.usage_chunk(env, results)) + "data: [DONE]\n\n"  # one write
        finally:
            watch.cancel()
            self._cancel_open(run)

    async def _next(self, run: Run) -> tuple:
        """The run's next event; ClientGone once the client has disconnected."""
        event = await run.events.get()
        if event is GONE:
            raise ClientGone()
        return event

    def _take(self, run: Run, event: tuple) -> dict:
        """A reply's result, kept in run.results (an error reply is raised as an APIError)."""
        index, kind, reply = event
        if kind != "reply":
            return {}
        if not reply.get("ok"):
            run.results[index] = {}
            err = reply.get("error") or {}
            raise from_kernel(str(err.get("code", "INTERNAL")), str(err.get("message", "")),
                              "messages" if run.gen.kind == "chat" else "prompt")
        run.results[index] = reply["result"]
        return reply["result"]

    def _cancel_open(self, run: Run) -> None:
        for i, label in enumerate(run.labels):
            if run.is_open(i):
                self.bridge.cancel(run.key, label)
                self.metrics.cancelled.inc()

    async def api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        self.metrics.errors.labels(str(exc.status), str(exc.code)).inc()
        return JSONResponse(exc.body(), status_code=exc.status)

    # ---- helpers ----
    async def _agent(self, request: Request) -> tuple[str, str]:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise APIError(401, "missing API key: send 'Authorization: Bearer <the secret of `aiosim agent add NAME`>'",
                           "authentication_error", None, "missing_api_key")
        key = key.strip()
        return key, await self.bridge.agent(key)

    async def _model(self) -> str:
        if self.model_id is None:
            info = await self.bridge.call("llm.info")
            self.model_id = str(info["model_id"])
        return self.model_id


async def _json_body(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None


async def _disconnected(request: Request, run: Run) -> None:
    """Tells the run when its client has gone (uvicorn answers receive() once the body is read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    run.events.put_nowait(GONE)


def _label(user: str | None) -> str:
    """Request labels start with the OpenAI `user`, made safe for a label (docs/protocol.md section 3)."""
    if not user:
        return "gw."
    return "gw." + "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in user[:64]) + "."


def _sse(body: dict) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(APIError(exc.status_code, str(exc.detail), "invalid_request_error", None, kind).body(),
                        status_code=exc.status_code)


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)


def build_app(gateway: Gateway) -> Starlette:
    routes = [Route("/v1/models", gateway.models, methods=["GET"]),
              Route("/v1/chat/completions", gateway.chat, methods=["POST"]),
              Route("/v1/completions", gateway.completions, methods=["POST"]),
              Route("/metrics", gateway.scrape, methods=["GET"])]
    handlers = {APIError: gateway.api_error, HTTPException: _http_error, ClientGone: _client_gone}
    return Starlette(routes=routes, exception_handlers=handlers)
