"""Helpers that drive a WorkerEngine (or a remote worker) the way the kernel would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PlanFn = Callable[[dict], dict]


@dataclass
class Run:
    """What a request produced across all its slices."""

    output_ids: list[int] | None = None
    output_logprobs: bytes | None = None
    finish_reason: str | None = None
    streamed: list[int] = field(default_factory=list)
    step_scores: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def prefill(rid: Any, prompt: list[int], params: dict) -> dict:
    return {"rid": rid, "mode": "prefill", "prompt_ids": prompt, "params": params}


def absorb(run: Run, done: dict) -> bool:
    """Fold a plan_done into `run`; True once the request finished."""
    for part in done["evicted"] + done["loaded"]:
        if part["error"] is not None:
            run.errors.append(part["error"])
    for result in done["results"]:
        if result["error"] is not None:
            run.errors.append(result["error"])
            continue
        run.streamed += result["new_token_ids"]
        run.step_scores += result["step_scores"] or []
        if result["is_finished"]:
            run.output_ids, run.finish_reason = result["output_ids"], result["finish_reason"]
            run.output_logprobs = result["output_logprobs"]
            return True
    return False


def uninterrupted(execute: PlanFn, rid: Any, prompt: list[int], params: dict) -> Run:
    run = Run()
    absorb(run, execute({"plan_id": f"{rid}-0", "load": [prefill(rid, prompt, params)], "decode": [rid], "steps": 10_000}))
    return run


def sliced(
    executors: list[PlanFn], rid: Any, prompt: list[int], params: dict, cuts: list[int], mode: str = "swap"
) -> Run:
    """Decode in slices ending at `cuts` (step counts); evict after each slice and restore the
    next slice on the next executor in turn (several workers => restores cross processes)."""
    run = Run()
    bounds = sorted(set(c for c in cuts if c > 0)) + [10_000]
    load, last, n = prefill(rid, prompt, params), 0, 0
    for n, bound in enumerate(bounds):
        execute = executors[n % len(executors)]
        done = execute({"plan_id": f"{rid}-{n}", "load": [load], "decode": [rid], "steps": bound - last})
        if absorb(run, done) or run.errors:
            return run
        evicted = execute({"plan_id": f"{rid}-{n}-evict", "evict": [{"rid": rid, "mode": mode}], "steps": 0})
        absorb(run, evicted)
        load, last = {"rid": rid, "mode": "restore"}, bound
    return run
