"""`aiosim bench switch`: context-switch cost, snapshot+restore through LMDB vs recompute.

For each model and context length: prefill a request of that many tokens, then time
  - snapshot_restore_s: swap_out (serialize + one LMDB write txn that digests each value right
    before its put) + swap_in (one read txn that verifies each private copy right after it is
    made, then the cache rebuild) + delete, the path a preempted request takes; breakdown_s splits
    it by stage (digesting is booked to checksum/verify, not put/get; medians per stage, so they
    need not add up exactly);
  - recompute_s: re-prefilling the same tokens (what `--preempt recompute` pays);
  - raw_lmdb_put_get_s: RAW_LMDB below, the floor any LMDB snapshot of these bytes pays.
All three run interleaved, in rounds that cycle through every order of the three (so each one
follows each other one equally often: cache state favours none), and report medians. Targets: ratio <= 0.10 at every
context >= 512 and snapshot bandwidth >= 50% of raw LMDB (snapshot_vs_raw >= 0.5).
Heavy imports happen inside functions so that registering the subcommand stays cheap.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

MB = 1e6
MAX_RATIO = 0.10
RATIO_MIN_CONTEXT = 512
MIN_SNAPSHOT_VS_RAW = 0.5
RAW_LMDB = (
    "the very same value buffers (meta + one value per tensor) through the same LMDB environment "
    "(same flags, sync=False) with bare py-lmdb calls: one write txn putting every value, one read "
    "txn (buffers=True) copying every value once into private memory, one write txn deleting them; "
    "no encoding, digests, verification or tensor rebuild"
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "switch", help="snapshot+restore vs recompute cost per context length",
        description="Prefill one request per model and context, then time its context switch: snapshot to "
        "LMDB and restore (with a stage breakdown), a raw LMDB put/get of the same bytes, and a recompute "
        "(re-prefill). Prints a table with PASS/FAIL per target; --json writes the rows.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="write {'rows': [...]} here")
    parser.add_argument("--contexts", default="128,512,2048", help="comma-separated token counts")
    parser.add_argument(
        "--models", default="tiny,gpt2-small-random",
        help="comma-separated: tiny, gpt2-small-random (built locally on first use) or a local HF model dir",
    )
    parser.add_argument(
        "--repeats", type=int, default=12,
        help="timed rounds per row; a multiple of 6 balances the order of the three measurements",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (workers pin the same)")
    parser.set_defaults(func=main)


def progress(message: str) -> None:
    print(f"[bench switch] {message}", file=sys.stderr, flush=True)


def run_orders(names: list[str], repeats: int) -> list[list[str]]:
    """The order of each round: the rounds cycle through every permutation of `names`, so over
    each full cycle every fn runs right after every other one equally often within rounds (plain
    rotation would not do that: rotating A B C keeps C before A in every round, so one fn would
    always follow the cache-evicting recompute and another never)."""
    orders = [list(order) for order in itertools.permutations(names)]
    return [orders[i % len(orders)] for i in range(repeats)]


def interleaved_runs(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, list]]:
    """Median seconds of each fn, run interleaved in the orders of `run_orders` so that machine
    noise and cache state hit all of them alike; also what each fn returned on every timed run."""
    for fn in fns.values():
        fn()  # warm-up: first touches of fresh pages are not what we measure
    times: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, list] = {name: [] for name in fns}
    for order in run_orders(list(fns), repeats):
        for name in order:
            fn = fns[name]
            t0 = time.perf_counter()
            results[name].append(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}, results


STAGE_ORDER = ("serialize", "checksum", "put", "get", "verify", "rebuild", "delete")


def median_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds per stage, in pipeline order (stages re-booked with StageTimes.move would
    otherwise come in the order they were first touched)."""
    stages = sorted(runs[0], key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
    return {stage: statistics.median(run.get(stage, 0.0) for run in runs) for stage in stages}


def main(args: argparse.Namespace) -> int:
    from workers.model import load_model
    from workers.store import SnapshotStore

    rows = []
    with tempfile.TemporaryDirectory(prefix="aiosim-bench-") as tmp:
        store = SnapshotStore(f"{tmp}/snapshots.lmdb")
        try:
            for spec in [m for m in args.models.split(",") if m]:
                progress(f"loading {spec}")
                loaded = load_model(spec, threads=args.threads)
                for context in [int(c) for c in args.contexts.split(",") if c]:
                    rows.append(measure(loaded, store, context, args.repeats))
        finally:
            store.close()
    print_table(rows)
    if args.json:
        targets = {"max_ratio": MAX_RATIO, "ratio_min_context": RATIO_MIN_CONTEXT, "min_snapshot_vs_raw": MIN_SNAPSHOT_VS_RAW}
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "targets": targets, "raw_lmdb": RAW_LMDB}, fh, indent=2)
    return 0  # a missed target is a FAIL in the table and JSON, not a crash


def measure(loaded: Any, store: Any, context: int, repeats: int) -> dict:
    import torch

    from workers.decoder import Decoder
    from workers.params import GenParams
    from workers.restore import StageTimes, swap_in, swap_out
    from workers.snapshot import encode

    progress(f"{loaded.info.model_id} context {context}: prefill")
    decoder = Decoder(loaded)
    prompt = torch.randint(0, 256, (context,), generator=torch.Generator().manual_seed(context)).tolist()
    state = decoder.prefill("bench", prompt, GenParams(max_new_tokens=1))
    fingerprint = loaded.info.fingerprint

    def switch() -> dict[str, float]:
        times = StageTimes()
        swap_out(store, state, "swap", fingerprint, times)
        swap_in(store, decoder, "bench", times=times)
        store.delete("bench")
        times.lap("delete")
        return times.seconds

    values = encode(state, "swap", fingerprint)
    snapshot_bytes = sum(memoryview(v).nbytes for _, v in values)
    progress(f"{loaded.info.model_id} context {context}: snapshot+restore / raw LMDB / recompute x{repeats}")
    medians, results = interleaved_runs(
        {"switch": switch, "raw": lambda: raw_put_get(store.env, values), "recompute": lambda: decoder.reprefill(state)},
        repeats,
    )
    breakdowns = {"snapshot": median_stages(results["switch"]), "raw": median_stages(results["raw"])}
    return row(loaded, context, state.kv_bytes, snapshot_bytes, medians, breakdowns, repeats)


def row(loaded: Any, context: int, kv_bytes: int, snapshot_bytes: int, medians: dict, breakdowns: dict, repeats: int) -> dict:
    snapshot_restore_s, raw_s, recompute_s = medians["switch"], medians["raw"], medians["recompute"]
    ratio, snapshot_vs_raw = snapshot_restore_s / recompute_s, raw_s / snapshot_restore_s
    return {
        "model": loaded.info.model_id, "context": context, "kv_bytes": kv_bytes,
        "snapshot_bytes": snapshot_bytes, "snapshot_restore_s": snapshot_restore_s,
        "recompute_s": recompute_s, "ratio": ratio,
        "snapshot_mb_s": snapshot_bytes / snapshot_restore_s / MB,
        "raw_lmdb_put_get_s": raw_s, "raw_lmdb_mb_s": snapshot_bytes / raw_s / MB,
        "snapshot_vs_raw": snapshot_vs_raw,
        "breakdown_s": breakdowns["snapshot"], "raw_breakdown_s": breakdowns["raw"],
        "ratio_ok": ratio <= MAX_RATIO if context >= RATIO_MIN_CONTEXT else None,
        "bandwidth_ok": snapshot_vs_raw >= MIN_SNAPSHOT_VS_RAW,
        "repeats": repeats, "device": loaded.info.fingerprint["device"],
        "torch_threads": loaded.info.fingerprint["torch_threads"],
    }


def raw_put_get(env: Any, values: list[tuple[str, Any]]) -> dict[str, float]:
    """RAW_LMDB: the same values, same environment, bare calls (keys under their own prefix).
    Returns seconds per stage (put, get, delete)."""
    import numpy as np

    t0 = time.perf_counter()
    keys = [b"raw\0" + name.encode() for name, _ in values]
    with env.begin(write=True) as txn:
        for key, (_, value) in zip(keys, values, strict=True):
            txn.put(key, value)
    t1 = time.perf_counter()
    with env.begin(buffers=True) as txn:
        copies = [np.frombuffer(txn.get(key), dtype=np.uint8).copy() for key in keys]
    t2 = time.perf_counter()
    del copies
    with env.begin(write=True) as txn:
        for key in keys:
            txn.delete(key)
    return {"put": t1 - t0, "get": t2 - t1, "delete": time.perf_counter() - t2}


def print_table(rows: list[dict]) -> None:
    print(
        f"{'model':<22}{'context':>8}{'KV MB':>9}{'snap+restore':>14}{'recompute':>11}{'ratio':>7}"
        f"{'snap MB/s':>11}{'raw MB/s':>10}{'snap/raw':>9}  targets (ratio<={MAX_RATIO}, snap/raw>={MIN_SNAPSHOT_VS_RAW})"
    )
    for r in rows:
        verdicts = {None: "-", True: "PASS", False: "FAIL"}
        print(
            f"{r['model']:<22}{r['context']:>8}{r['kv_bytes'] / MB:>9.2f}{r['snapshot_restore_s'] * 1e3:>12.1f}ms"
            f"{r['recompute_s'] * 1e3:>9.1f}ms{r['ratio']:>7.3f}{r['snapshot_mb_s']:>11.0f}{r['raw_lmdb_mb_s']:>10.0f}"
            f"{r['snapshot_vs_raw']:>9.2f}  ratio {verdicts[r['ratio_ok']]}, bandwidth {verdicts[r['bandwidth_ok']]}"
        )
    for key, title in (("breakdown_s", "snapshot+restore"), ("raw_breakdown_s", "raw LMDB")):
        stages = list(rows[0][key]) if rows else []
        print(f"{title} breakdown (ms, medians per stage): " + ", ".join(stages))
        for r in rows:
            print(f"{r['model']:<22}{r['context']:>8}  " + " ".join(f"{r[key][s] * 1e3:8.2f}" for s in stages))


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m benchmarks.switch")
    configure(cli)
    parsed = cli.parse_args()
    sys.exit(parsed.func(parsed))
