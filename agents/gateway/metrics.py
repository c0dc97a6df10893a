"""GatewayMetrics: `/metrics` in the Prometheus text format (prometheus_client, its own registry).

Gateway-side counters and histograms are updated by the request handlers (event loop thread);
kernel-wide figures (requests by state, preemptions, swaps, KV use) are read from sched.stats at
each scrape. Names and labels: docs/gateway.md "Metrics".
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("aiosim_gateway_requests", "HTTP generation requests answered", ["endpoint"], registry=r)
        self.errors = Counter("aiosim_gateway_errors", "error responses", ["status", "code"], registry=r)
        self.cancelled = Counter("aiosim_gateway_cancelled_requests", "kernel requests cancelled (client gone)", registry=r)
        self.tokens = Counter("aiosim_gateway_tokens", "tokens of answered requests", ["kind"], registry=r)
        self.preemptions = Counter("aiosim_gateway_preemptions", "preemptions of answered requests", registry=r)
        self.waiting = Histogram("aiosim_gateway_waiting_seconds", "arrival to first scheduled", registry=r, buckets=BUCKETS_S)
        self.ttft = Histogram("aiosim_gateway_ttft_seconds", "arrival to first token", registry=r, buckets=BUCKETS_S)
        self.turnaround = Histogram("aiosim_gateway_turnaround_seconds", "arrival to finish", registry=r, buckets=BUCKETS_S)
        self.kernel_requests = Gauge("aiosim_kernel_requests", "requests the kernel knows, by state", ["state"], registry=r)
        self.kernel_preemptions = Gauge("aiosim_kernel_preemptions", "preemptions of all requests so far", registry=r)
        self.kernel_swaps = Gauge("aiosim_kernel_swaps", "snapshots to LMDB (swap-outs) so far", ["direction"], registry=r)
        self.kv_used = Gauge("aiosim_kernel_kv_used_bytes", "KV bytes reserved on a worker", ["worker"], registry=r)
        self.kv_budget = Gauge("aiosim_kernel_kv_budget_bytes", "KV budget of a worker", ["worker"], registry=r)

    def observe(self, endpoint: str, results: list[dict]) -> None:
        """One answered request and its choices' results (llm.generate results)."""
        self.requests.labels(endpoint).inc()
        if results:
            self.tokens.labels("prompt").inc(results[0]["prompt_tokens"])
        for result in results:
            timing = result["timing"]
            self.tokens.labels("completion").inc(len(result["token_ids"]))
            self.preemptions.inc(timing.get("preemptions") or 0)
            for histogram, name in ((self.waiting, "waiting_s"), (self.ttft, "ttft_s"), (self.turnaround, "turnaround_s")):
                if timing.get(name) is not None:
                    histogram.observe(timing[name])

    def render(self, stats: dict) -> bytes:
        """The exposition, with the kernel-wide gauges set from a sched.stats result."""
        requests = stats.get("requests") or []
        self.kernel_requests.clear()
        for state in {r["state"] for r in requests}:
            self.kernel_requests.labels(state).set(sum(r["state"] == state for r in requests))
        self.kernel_preemptions.set(sum(r.get("preemptions") or 0 for r in requests))
        self.kernel_swaps.labels("out").set(sum(len(r.get("snapshot_durations_s") or ()) for r in requests))
        self.kernel_swaps.labels("in").set(sum(len(r.get("restore_durations_s") or ()) for r in requests))
        for row in stats.get("kv") or []:
            self.kv_used.labels(str(row["worker_id"])).set(row["used_bytes"])
            if row.get("budget_bytes") is not None:
                self.kv_budget.labels(str(row["worker_id"])).set(row["budget_bytes"])
        return generate_latest(self.registry)
