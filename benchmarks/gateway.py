"""`aiosim bench gateway`: N concurrent `openai` clients streaming through the gateway versus the
same workload through the SDK, on one kernel (its gateway a child): tokens/s and time to first token.

Per N (default 16 and 64) and path: N clients, each its own process by default as every agent is
(--client-processes P spreads them as threads over P processes instead), each with its own agent
(SDK: a registered Client; gateway: an identity's secret as its API key, so N agents either way),
first one untimed request each (registration, connections), then together R streamed requests each
of T tokens (greedy, a prompt per client and request). The paths' waves alternate --repeats times;
the figures are medians over the repeats (the machine's load drifts between waves). tokens/s:
completion tokens / the wave's wall time; TTFT: from sending a request to its first streamed token
(SDK: the first stream message; gateway: the first chunk, which the gateway sends on the first
stream message). Targets (issue 15): gateway tokens/s >= 0.9 x the SDK's at 64 clients, TTFT p50
overhead <= 5 ms. The clients share this machine's cores with the kernel, worker and gateway.

Paths (--paths): `sdk`, `gateway` (the `openai` client through the gateway) and `http` (a lean
client through the same gateway: http.client on one kept-alive connection, SSE split by hand), which
separates what the gateway adds from what the `openai` client's own work costs: that client spends
~4-6 ms of CPU per streamed 64-token request (building it, a new connection each time since it stops
reading at `data: [DONE]`, most of it reading the chunks), in bursts, since a batch's requests get
their chunks together.

Two TTFT overheads are reported per path against the SDK. `ttft_p50_overhead_ms`: TTFT p50 minus
the SDK's (the issue's figure; dominated by queueing, which differs by tens of ms between waves of
either path). `path_p50_overhead_ms`: per request, the client's TTFT minus the kernel's own `ttft_s`
for it (arrival in the kernel to the end of the first slice: the SDK's `timing`, the gateway's usage
chunk `aiosim.requests[0]`) is what the path from client to kernel and back added; the figure is
the path's p50 of that minus the SDK's, free of the queueing noise (`http_...` for the lean client).
Per wave, `clients_cpu_s` (the client processes' CPU time over the timed part) and
`machine_busy_share` (the share of all cores busy meanwhile, from /proc/stat) show what the paths
cost the machine they share.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PATHS = ("sdk", "gateway", "http")
TARGETS = {"min_tokens_per_s_ratio_at_64": 0.9, "max_ttft_p50_overhead_ms": 5.0}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("gateway", help="openai clients through the gateway vs the SDK: tokens/s and TTFT p50/p99",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--clients", default="16,64", help="numbers of concurrent clients, comma-separated")
    p.add_argument("--requests", type=int, default=4, help="timed requests per client")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per request")
    p.add_argument("--scheduler", default="rr")
    p.add_argument("--quantum", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="waves of every path, alternating, per client count")
    p.add_argument("--client-processes", type=int, default=0,
                   help="processes the clients of a wave are spread over, threads within each (0: one process per "
                        "client, as every agent is its own process)")
    p.add_argument("--paths", default="sdk,gateway,http",
                   help="client paths, in wave order: sdk (aiosim's SDK), gateway (the openai client through the "
                        "gateway) and, optionally, http (a lean HTTP client through the gateway: the gateway's own "
                        "latency without the openai client's work)")
    p.set_defaults(func=cmd_gateway)
    return p


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


Ask = Callable[[str], tuple[float, int, float]]  # prompt -> (TTFT s, completion tokens, the kernel's TTFT s)
MakeClient = Callable[[int], tuple[Ask, Callable[[], None]]]  # client index -> (ask, close)


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """How a wave's clients reach the kernel (picklable: each client process builds its own)."""

    path: str  # one of PATHS
    target: str  # the kernel's address, or the gateway's URL
    max_tokens: int
    tag: str = ""  # SDK: makes the agent names of a wave unique
    keys: tuple[str, ...] = ()  # gateway: one API key per client
    model: str = ""

    def make(self) -> MakeClient:
        if self.path == "sdk":
            return sdk_client(self.target, self.max_tokens, self.tag)
        if self.path == "http":
            return http_client(self.target, list(self.keys), self.model, self.max_tokens)
        return gateway_client(self.target, list(self.keys), self.model, self.max_tokens)


def run_wave(num_clients: int, spec: ClientSpec, num_requests: int, processes: int) -> dict:
    """num_clients clients, as threads spread over `processes` processes (so that the clients'
    own Python work, an `openai` request's especially, does not queue them all behind one GIL):
    each makes one untimed request, then, all together, num_requests timed ones."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(num_clients + 1), ctx.Queue()
    shares = [list(range(p, num_clients, processes)) for p in range(min(processes, num_clients))]
    procs = [ctx.Process(target=_client_process, args=(spec, ids, num_requests, barrier, out)) for ids in shares]
    for proc in procs:
        proc.start()
    barrier.wait()
    started, busy_before = time.monotonic(), machine_busy_s()
    parts = [out.get() for _ in procs]
    wall_s = time.monotonic() - started
    busy_s = machine_busy_s() - busy_before if busy_before is not None else None
    for proc in procs:
        proc.join()
    ttfts = [t for part in parts for t in part["ttfts"]]
    paths = [t for part in parts for t in part["paths"]]
    tokens = sum(part["tokens"] for part in parts)
    errors = [e for part in parts for e in part["errors"]]
    return {"num_requests": len(ttfts), "num_tokens": tokens, "wall_s": round(wall_s, 3),
            "tokens_per_s": round(tokens / wall_s, 1), "ttft_p50_ms": round(percentile(ttfts, 0.5) * 1e3, 2),
            "ttft_p99_ms": round(percentile(ttfts, 0.99) * 1e3, 2),
            "path_p50_ms": round(percentile(paths, 0.5) * 1e3, 2), "path_p99_ms": round(percentile(paths, 0.99) * 1e3, 2),
            "clients_cpu_s": round(sum(part["cpu_s"] for part in parts), 3),
            "machine_busy_share": round(busy_s / (wall_s * (os.cpu_count() or 1)), 3) if busy_s is not None else None,
            "errors": errors[:5], "num_errors": len(errors)}


def machine_busy_s() -> float | None:
    """CPU seconds all cores have spent not idle since boot (Linux /proc/stat), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _client_process(spec: ClientSpec, ids: list[int], num_requests: int, barrier, out) -> None:
    """One client process: a thread per client index in `ids`; puts its TTFTs, tokens, errors."""
    make_client = spec.make()
    ttfts: list[float] = []
    paths: list[float] = []  # TTFT minus the kernel's own TTFT for the request: the path's added latency
    tokens: list[int] = []
    errors: list[str] = []
    cpu_at_barrier: list[float] = []

    def client(i: int) -> None:
        close = None
        try:
            ask, close = make_client(i)
            ask(f"warm-up {i}")
        except Exception as exc:  # noqa: BLE001 - reported in the results
            errors.append(f"client {i}: {exc}")
            ask = None
        barrier.wait()
        if not cpu_at_barrier:  # the process's CPU time from the start of the timed part
            cpu_at_barrier.append(time.process_time())
        for j in range(num_requests if ask else 0):
            try:
                ttft, num_tokens, kernel_ttft = ask(f"client {i} request {j}: tell me a story")
                ttfts.append(ttft)
                paths.append(ttft - kernel_ttft)
                tokens.append(num_tokens)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"client {i}: {exc}")
        if close is not None:
            close()

    threads = [threading.Thread(target=client, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"ttfts": ttfts, "paths": paths, "tokens": sum(tokens), "errors": errors,
             "cpu_s": time.process_time() - (cpu_at_barrier or [0.0])[0]})


def sdk_client(address: str, max_tokens: int, tag: str) -> MakeClient:
    from agents.sdk import Client

    def make(i: int) -> tuple[Ask, Callable[[], None]]:
        client = Client(address, name=f"sdk-{tag}-{i}", secret_file=False)

        def ask(prompt: str) -> tuple[float, int]:
            sent, first = time.monotonic(), []
            result = client.call("llm.generate", _on_stream=lambda _: first or first.append(time.monotonic()),
                                 prompt=prompt, max_new_tokens=max_tokens, stream=True)
            return first[0] - sent, len(result["token_ids"]), result["timing"]["ttft_s"]

        return ask, client.close

    return make


def gateway_client(url: str, keys: list[str], model: str, max_tokens: int) -> MakeClient:
    import openai

    def make(i: int) -> tuple[Ask, Callable[[], None]]:
        client = openai.OpenAI(base_url=url, api_key=keys[i], max_retries=0, timeout=600)

        def ask(prompt: str) -> tuple[float, int, float]:
            sent, first, usage, kernel_ttft = time.monotonic(), None, 0, float("nan")
            for chunk in client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, stream=True,
                                                   stream_options={"include_usage": True}):
                first = first or time.monotonic()
                if chunk.usage:
                    usage = chunk.usage.completion_tokens
                    kernel_ttft = (chunk.model_extra or {})["aiosim"]["requests"][0]["ttft_s"]
            return first - sent, usage, kernel_ttft

        return ask, client.close

    return make


def http_client(url: str, keys: list[str], model: str, max_tokens: int) -> MakeClient:
    def make(i: int) -> tuple[Ask, Callable[[], None]]:
        client = LeanClient(url, keys[i], model, max_tokens)
        return client.ask, client.close

    return make


class LeanClient:
    """Streamed completions through the gateway from a lean client: the stdlib's http.client on one
    kept-alive connection, SSE lines split by hand. What the gateway itself adds to the path, without
    the `openai` client's own work (which, on a machine with few cores, the clients' bursts turn into
    latency)."""

    def __init__(self, url: str, key: str, model: str, max_tokens: int) -> None:
        import http.client
        from urllib.parse import urlsplit

        where = urlsplit(url)
        self.path, self.model, self.max_tokens = f"{where.path}/completions", model, max_tokens
        self.conn = http.client.HTTPConnection(where.hostname, where.port, timeout=600)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def ask(self, prompt: str) -> tuple[float, int, float]:
        """(TTFT s, completion tokens, the kernel's TTFT s) of one streamed completion."""
        body = json.dumps({"model": self.model, "prompt": prompt, "max_tokens": self.max_tokens, "stream": True,
                           "stream_options": {"include_usage": True}})
        sent, first, usage, kernel_ttft = time.monotonic(), None, 0, float("nan")
        self.conn.request("POST", self.path, body, self.headers)
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
        for line in response:  # to the body's end, [DONE] included, so that the connection is kept
            if not line.startswith(b"data: "):
                continue
            first = first or time.monotonic()
            if line.startswith(b"data: [DONE]"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage, kernel_ttft = chunk["usage"]["completion_tokens"], chunk["aiosim"]["requests"][0]["ttft_s"]
        if first is None:
            raise RuntimeError("the stream had no events")
        return first - sent, usage, kernel_ttft

    def close(self) -> None:
        self.conn.close()


def cmd_gateway(args: argparse.Namespace) -> int:
    from agents.launch.kernelproc import KernelProcess
    from agents.sdk import Client

    counts = [int(n) for n in args.clients.split(",")]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not {"sdk", "gateway"} <= set(paths) or not set(paths) <= set(PATHS):
        raise SystemExit(f"--paths: 'sdk' and 'gateway' and optionally 'http' (got {args.paths!r})")
    state = Path(tempfile.mkdtemp(prefix="aiosim-bench-gateway-"))
    flags = ["--scheduler", args.scheduler, "--quantum", str(args.quantum), "--max-batch", str(args.max_batch),
             "--workers", str(args.workers), "--gateway", "127.0.0.1:0"]
    kernel = KernelProcess.start(flags, state)
    results = []
    try:
        kernel.wait_ready(args.workers)
        url = _gateway_url(state)
        with Client(kernel.address, token=(state / "operator.token").read_text().strip()) as op:
            model = op.llm_info()["model_id"]
            for n in counts:
                keys = [op.identity_add(name=f"http-{n}-{i}")["secret"] for i in range(n)]
                waves: dict[str, list[dict]] = {path: [] for path in paths}
                processes = args.client_processes or n
                for r in range(args.repeats):
                    progress(f"{n} clients in {min(processes, n)} processes, repeat {r + 1}/{args.repeats}: {', '.join(paths)}")
                    for path in paths:
                        spec = ClientSpec(path, kernel.address if path == "sdk" else url, args.max_tokens,
                                          tag=f"{n}-{r}", keys=tuple(keys), model=model)
                        waves[path].append(run_wave(n, spec, args.requests, processes))
                results.append(summarize(n, waves))
                progress(json.dumps({k: v for k, v in results[-1].items() if k != "waves"}))
    finally:
        kernel.stop()
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("func", "json", "command", "bench")},
              "results": results, "targets": TARGETS, "met": _met(results)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}: {json.dumps(report['met'])}", file=sys.stderr)
    return 0 if all(r[path]["num_errors"] == 0 for r in results for path in paths) else 1


def progress(message: str) -> None:
    print(f"[bench gateway] {message}", file=sys.stderr, flush=True)


def summarize(num_clients: int, waves: dict[str, list[dict]]) -> dict:
    """Medians over the repeats per path, their ratio and TTFT difference, and every wave."""
    def median(path: str, key: str) -> float:
        return round(statistics.median(w[key] for w in waves[path]), 2)

    out: dict = {"clients": num_clients}
    for path in waves:
        out[path] = {key: median(path, key) for key in ("tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "path_p50_ms",
                                                        "path_p99_ms", "clients_cpu_s")}
        shares = [w["machine_busy_share"] for w in waves[path] if w.get("machine_busy_share") is not None]
        out[path]["machine_busy_share"] = round(statistics.median(shares), 3) if shares else None
        out[path]["num_errors"] = sum(w["num_errors"] for w in waves[path])
    for path, prefix in (("gateway", ""), ("http", "http_")):
        if path in out:
            out[f"{prefix}tokens_per_s_ratio"] = round(out[path]["tokens_per_s"] / out["sdk"]["tokens_per_s"], 3)
            out[f"{prefix}ttft_p50_overhead_ms"] = round(out[path]["ttft_p50_ms"] - out["sdk"]["ttft_p50_ms"], 2)
            out[f"{prefix}path_p50_overhead_ms"] = round(out[path]["path_p50_ms"] - out["sdk"]["path_p50_ms"], 2)
    out["waves"] = waves
    return out


def _gateway_url(state: Path) -> str:
    log, deadline = state / "gateway.log", time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"serving (http://\S+) ", log.read_text() if log.exists() else "")
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise RuntimeError(f"the gateway did not start: see {log}")


def _met(results: list[dict]) -> dict:
    at_64 = [r for r in results if r["clients"] == 64]
    limit = TARGETS["max_ttft_p50_overhead_ms"]
    return {"tokens_per_s_ratio_at_64": at_64[0]["tokens_per_s_ratio"] >= TARGETS["min_tokens_per_s_ratio_at_64"] if at_64 else None,
            "ttft_p50_overhead": all(r["ttft_p50_overhead_ms"] <= limit for r in results),
            "path_p50_overhead": all(r["path_p50_overhead_ms"] <= limit for r in results),
            **({"http_path_p50_overhead": all(r["http_path_p50_overhead_ms"] <= limit for r in results)}
               if all("http" in r for r in results) else {})}
