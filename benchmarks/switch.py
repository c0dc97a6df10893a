"""`aiosim bench switch`: context-switch cost, snapshot+restore through LMDB vs recompute.

For each model and context length: prefill a request of that many tokens, then time
  - snapshot_restore_s: swap_out (encode + checksums + LMDB put) + swap_in (LMDB get + verify +
    rebuild cache) + delete, the path a preempted request takes (median of repeats);
  - recompute_s: re-prefilling the same tokens (what `--preempt recompute` pays);
  - raw_lmdb_mb_s: plain LMDB put+get of the very same values in the same store, as a ceiling.
Heavy imports happen inside main() so that registering the subcommand stays cheap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

MB = 1e6


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("switch", help="snapshot+restore vs recompute cost per context length")
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="write {'rows': [...]} here")
    parser.add_argument("--contexts", default="128,512,2048", help="comma-separated token counts")
    parser.add_argument("--models", default="tiny,gpt2-small-random", help="comma-separated model specs")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.set_defaults(func=main)


def progress(message: str) -> None:
    print(f"[bench switch] {message}", file=sys.stderr, flush=True)


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each fn, run round-robin so that machine noise hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up: first touches of fresh pages are not what we measure
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


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
        with open(args.json, "w") as fh:
            json.dump({"rows": rows}, fh, indent=2)
    return 0


def measure(loaded: Any, store: Any, context: int, repeats: int) -> dict:
    import torch

    from workers.decoder import Decoder
    from workers.params import GenParams
    from workers.restore import swap_in, swap_out
    from workers.snapshot import encode

    progress(f"{loaded.info.model_id} context {context}: prefill")
    decoder = Decoder(loaded)
    prompt = torch.randint(0, 256, (context,), generator=torch.Generator().manual_seed(context)).tolist()
    state = decoder.prefill("bench", prompt, GenParams(max_new_tokens=1))
    fingerprint = loaded.info.fingerprint

    def switch() -> None:
        swap_out(store, state, "swap", fingerprint)
        swap_in(store, decoder, "bench")
        store.delete("bench")

    values = [(name, value) for name, value in encode(state, "swap", fingerprint)]
    snapshot_bytes = sum(memoryview(v).nbytes for _, v in values)
    progress(f"{loaded.info.model_id} context {context}: snapshot+restore / raw LMDB / recompute x{repeats}")
    medians = interleaved_medians(
        {"switch": switch, "raw": lambda: raw_put_get(store, values), "recompute": lambda: decoder.reprefill(state)},
        repeats,
    )
    snapshot_restore_s, raw_s, recompute_s = medians["switch"], medians["raw"], medians["recompute"]
    return {
        "model": loaded.info.model_id, "context": context, "kv_bytes": state.kv_bytes,
        "snapshot_bytes": snapshot_bytes, "snapshot_restore_s": snapshot_restore_s,
        "recompute_s": recompute_s, "ratio": snapshot_restore_s / recompute_s,
        "snapshot_mb_s": snapshot_bytes / snapshot_restore_s / MB,
        "raw_lmdb_put_get_s": raw_s, "raw_lmdb_mb_s": snapshot_bytes / raw_s / MB,
        "snapshot_vs_raw": raw_s / snapshot_restore_s, "repeats": repeats,
        "device": loaded.info.fingerprint["device"], "torch_threads": loaded.info.fingerprint["torch_threads"],
    }


def raw_put_get(store: Any, values: list[tuple[str, Any]]) -> None:
    """The same values through the same store with no encoding, checksums or tensors."""
    store.put_entries("raw", values)
    store.get_arrays("raw", [name for name, _ in values])
    store.delete("raw")


def print_table(rows: list[dict]) -> None:
    header = f"{'model':<22}{'context':>8}{'KV MB':>9}{'snap+restore':>14}{'recompute':>11}{'ratio':>7}{'snap MB/s':>11}{'raw MB/s':>10}{'snap/raw':>9}"
    print(header)
    for r in rows:
        print(
            f"{r['model']:<22}{r['context']:>8}{r['kv_bytes'] / MB:>9.2f}{r['snapshot_restore_s'] * 1e3:>12.1f}ms"
            f"{r['recompute_s'] * 1e3:>9.1f}ms{r['ratio']:>7.3f}{r['snapshot_mb_s']:>11.0f}{r['raw_lmdb_mb_s']:>10.0f}"
            f"{r['snapshot_vs_raw']:>9.2f}"
        )


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m benchmarks.switch")
    configure(cli)
    parsed = cli.parse_args()
    sys.exit(parsed.func(parsed))
