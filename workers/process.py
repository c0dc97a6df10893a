"""The worker process: load the model once, say ready, then execute kernel messages in order.

`python -m workers --worker-id N --kernel ipc://STATE/workers.sock --state-dir STATE --model tiny`
Exits 0 on a `shutdown` message or SIGTERM (after the message in hand), closing LMDB and the
socket. Protocol: docs/architecture.md ("Kernel <-> worker protocol").
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from kernel.lifeline import die_with_parent
from syscalls.errors import ErrorCode
from syscalls.worker_messages import TO_WORKER, FreeRequest, PlanDone, PlanRequest, Shutdown, parse
from workers.engine import EngineConfig, WorkerEngine
from workers.kvpool import DEFAULT_POOL_BYTES
from workers.link import KernelLink
from workers.restore import ON_INVALID
from workers.results import evict_result, load_result, seq_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers", description="aiosim LLM worker")
    parser.add_argument("--worker-id", type=int, required=True)
    parser.add_argument("--kernel", required=True, help="kernel ROUTER address, e.g. ipc://STATE/workers.sock")
    parser.add_argument("--state-dir", required=True, help="STATE dir; snapshots go to STATE/snapshots.lmdb")
    parser.add_argument("--model", default="tiny", help="tiny | gpt2-small-random | a local HF model dir")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (part of the fingerprint)")
    parser.add_argument("--heartbeat-s", type=float, default=1.0)
    parser.add_argument("--on-invalid", choices=ON_INVALID, default="error")
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--max-batch-rows", type=int, default=16)
    parser.add_argument("--engine", choices=["native", "hf"], default="native",
                        help="native: own batch-invariant forward over a paged KV pool (Llama family, GPT-2); hf: transformers' forward")
    parser.add_argument("--kv-pool-bytes", type=int, default=DEFAULT_POOL_BYTES, help="native engine's KV pool size")
    parser.add_argument("--record-scores", action="store_true", help="tests: per-step logit digests")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parent = die_with_parent()  # a kernel killed -9 takes its workers with it
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    from workers.model import load_model  # torch import: after argument parsing
    from workers.store import SnapshotStore

    loaded = load_model(args.model, threads=args.threads, attn_implementation=args.attn)
    store = SnapshotStore(Path(args.state_dir) / "snapshots.lmdb")
    config = EngineConfig(
        worker_id=args.worker_id, max_batch_rows=args.max_batch_rows, on_invalid=args.on_invalid,
        record_scores=args.record_scores, engine=args.engine, kv_pool_bytes=args.kv_pool_bytes,
    )
    engine = WorkerEngine(loaded, store, config)
    link = KernelLink(args.kernel, args.worker_id, args.heartbeat_s, parent)
    try:
        link.send_ready({**loaded.info.to_wire(), **engine.decoder.describe(), "fingerprint": dict(engine.fingerprint)})
        serve(engine, link, stopping)
    finally:
        link.close()
        store.close()
    return 0


class Inbox:
    """The kernel's messages in order, with a look at those already queued behind the one in
    hand: a `revoke` sent after its plan is seen before that plan starts if it arrived by then."""

    def __init__(self, link: KernelLink):
        self.link = link
        self.queued: deque[dict[str, Any]] = deque()

    def next(self) -> dict[str, Any] | None:
        return self.queued.popleft() if self.queued else self.link.recv()

    def is_revoked(self, plan_id: Any) -> bool:
        while (msg := self.link.recv(timeout_s=0)) is not None:
            self.queued.append(msg)
        return any(m.get("type") == "revoke" and m.get("plan_id") == plan_id for m in self.queued)


def serve(engine: WorkerEngine, link: KernelLink, stopping: threading.Event) -> None:
    inbox = Inbox(link)
    while not stopping.is_set():
        msg = inbox.next()
        if msg is not None and not handle(engine, link, msg, inbox):
            return


def handle(engine: WorkerEngine, link: KernelLink, raw: dict[str, Any], inbox: Inbox) -> bool:
    """Execute one message (syscalls/worker_messages.TO_WORKER); False means shut down. A
    revoke that finds its plan done or started is ignored."""
    try:
        msg = parse(raw, TO_WORKER)
    except ValueError as exc:
        print(f"worker {link.worker_id}: ignored message: {exc}", file=sys.stderr)
        return True
    if isinstance(msg, PlanRequest) and inbox.is_revoked(msg.plan_id):
        now = time.monotonic()
        link.send(PlanDone(engine.config.worker_id, msg.plan_id, now, now, revoked=True).to_wire())
    elif isinstance(msg, PlanRequest):
        link.send(run_plan(engine, link, msg).to_wire())
    elif isinstance(msg, FreeRequest):
        engine.free(msg.rids)
    return not isinstance(msg, Shutdown)


def run_plan(engine: WorkerEngine, link: KernelLink, plan: PlanRequest) -> PlanDone:
    try:
        return engine.execute(plan, on_step=link.watch.check)
    except Exception as exc:  # engine bug: fail the plan's requests, keep the worker alive
        traceback.print_exc(file=sys.stderr)
        return failed_plan_done(engine, plan, f"{type(exc).__name__}: {exc}")


def failed_plan_done(engine: WorkerEngine, plan: PlanRequest, message: str) -> PlanDone:
    error = {"code": ErrorCode.INTERNAL.value, "message": message}
    now = time.monotonic()
    return PlanDone(
        engine.config.worker_id, plan.plan_id, now, now,
        [evict_result(s.rid, 0, 0.0, error) for s in plan.evict],
        [load_result(s.rid, s.mode, None, None, 0, 0.0, error) for s in plan.load],
        [seq_error(rid, error) for rid in dict.fromkeys(plan.decode)],
    )
