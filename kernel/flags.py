"""Command-line flags shared by `aiosim kernel`, `aiosim launch` and the benchmarks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kernel.config import DEFAULT_KV_POOL_BYTES, KernelConfig, default_state_dir
from kernel.scheduler.policies import POLICIES as POLICY_CLASSES

DEFAULT_CHECKPOINT_EVERY = 64  # decode steps; see `aiosim bench chaos` for its cost (checkpoint_overhead)

POLICIES = tuple(POLICY_CLASSES)
POLICY_HELP = ("scheduling policy: fifo (run to completion), rr (round robin), mlfq (feedback queues), fair (VTC per "
               "agent), priority (lower first, with aging), srpt (shortest remaining by max_new_tokens or the "
               "expected_tokens hint), las (least attained service), plas (least attained service per program)")


def default_address(state_dir: Path | None = None) -> str:
    env = os.environ.get("AIOSIM_ADDRESS")
    if env:
        return env
    return f"ipc://{(state_dir or default_state_dir()).resolve() / 'kernel.sock'}"


def parse_bytes(text: str) -> int:
    """'64M', '2GiB', '1048576' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 65536, 64M, 2G)") from None


def add_kernel_flags(p: argparse.ArgumentParser, with_address: bool = True) -> None:
    g = p.add_argument_group("kernel")
    if with_address:
        g.add_argument("--address", default="", help="ROUTER address for agents (default ipc://STATE_DIR/kernel.sock; tcp://127.0.0.1:PORT accepted)")
    g.add_argument("--curve-allow", type=Path, default=None,
                   help="tcp:// only (always CURVE-encrypted, kernel keys in STATE_DIR/curve/): admit only the client "
                        "public keys in this file (one Z85 key per line); default: any client knowing the kernel's key")
    g.add_argument("--state-dir", type=Path, default=None, help="directory for sockets, logs, LMDB (default ./state or $AIOSIM_STATE)")
    g.add_argument("--max-message-bytes", type=parse_bytes, default=1 << 20, help="largest accepted message (default 1M)")
    g.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    g.add_argument("--debug", action="store_true", help="run every manager's check_integrity() whenever the kernel is idle")
    g.add_argument("--profile", type=Path, default=None, metavar="PATH",
                   help="profile the kernel's event loop (cProfile) and write the stats here at shutdown "
                        "(read with `python -m pstats PATH`)")
    g.add_argument("--mem-quota", type=parse_bytes, default=1 << 20, help="short-term memory quota per agent (default 1M)")
    g.add_argument("--tool-workers", type=int, default=2, help="tool runner processes")
    g.add_argument("--tool-timeout-s", type=float, default=5.0, help="default tool call timeout")
    g.add_argument("--reattach-grace", type=float, default=60.0, metavar="SECONDS",
                   help="after a crash, a kernel restarted on the same state dir resumes the requests in its journal; "
                        "an agent has this long to reconnect and re-attach (llm.attach, automatic in the SDK) before "
                        "its requests are cancelled; also how long a finished request's reply stays fetchable "
                        "(default %(default)s)")
    g.add_argument("--gateway", default=None, metavar="HOST:PORT",
                   help="also serve OpenAI's API there: `aiosim gateway` as the kernel's child, logging to "
                        "STATE_DIR/gateway.log (docs/gateway.md)")
    m = p.add_argument_group("model and workers")
    m.add_argument("--model", default="tiny", help="'tiny' (embedded random Llama, built locally) or a local Hugging Face model dir")
    m.add_argument("--workers", type=int, default=1, help="number of worker processes")
    m.add_argument("--worker-threads", type=int, default=1, help="torch threads per worker (exactness needs the same count everywhere)")
    m.add_argument("--on-invalid-snapshot", default="error", choices=("error", "recompute"), help="what a worker does with a snapshot that fails its checks")
    m.add_argument("--engine", default="native", choices=("native", "hf"),
                   help="native: aiosim's own batch-invariant forward over a paged KV pool (Llama, Qwen2, Mistral, GPT-2; "
                        "other architectures fall back to hf); hf: transformers' forward, batches padded (not batch-invariant)")
    add_scheduler_flags(p)


def add_scheduler_flags(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("scheduler")
    s.add_argument("--scheduler", default="fifo", choices=POLICIES, help=POLICY_HELP)
    s.add_argument("--quantum", type=int, default=8, help="decode steps per slice (rr, fair, priority, srpt, las, plas; base quantum of mlfq)")
    s.add_argument("--max-batch", type=int, default=1, help="requests decoded together per step (bit-identical outputs at any value on the native engine; on --engine hf only at 1)")
    s.add_argument("--kv-pool-bytes", "--kv-budget", dest="kv_pool_bytes", type=parse_bytes, default=DEFAULT_KV_POOL_BYTES,
                   help="each worker's KV pool (the one KV limit: the scheduler swaps preempted requests out beyond it); default %(default)s")
    s.add_argument("--preempt", default="swap", choices=("swap", "recompute"), help="swap KV to LMDB, or drop it and re-prefill on resume")
    s.add_argument("--fifo-slice-steps", type=int, default=None, help="fifo: decode steps per slice before the kernel looks again (default 16)")
    s.add_argument("--priority-aging-s", type=float, default=None,
                   help="priority: seconds of waiting worth one priority level (default 1.0); a request runs ahead of "
                        "every one arriving more than priority x this after it")
    s.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
                   help="decode steps between a running request's checkpoints to LMDB (KV included), which bound "
                        "what a worker crash costs it: it replays from its last checkpoint; 0 = never (replay from "
                        "the prompt); default %(default)s")
    s.add_argument("--no-lookahead", dest="lookahead", action="store_false",
                   help="rr, fifo, srpt, las, priority: do not send a worker its next slice while it runs one (by default "
                        "it is sent where it is the policy's choice whatever the running slice does, and one "
                        "an arrival outranks is revoked, so the worker does not wait for the kernel between slices; "
                        "docs/architecture.md, 'Lookahead')")


def config_from_args(args: argparse.Namespace) -> KernelConfig:
    state_dir = args.state_dir or default_state_dir()
    return KernelConfig(
        state_dir=state_dir, address=getattr(args, "address", "") or "", max_message_bytes=args.max_message_bytes,
        curve_allow=getattr(args, "curve_allow", None),
        log_level=args.log_level, debug=args.debug, profile=getattr(args, "profile", None), model=args.model,
        num_workers=args.workers,
        worker_threads=args.worker_threads, on_invalid_snapshot=args.on_invalid_snapshot,
        scheduler=args.scheduler, quantum=args.quantum, max_batch=args.max_batch,
        kv_pool_bytes=args.kv_pool_bytes, engine=getattr(args, "engine", "native"), preempt=args.preempt, mem_quota_bytes=args.mem_quota,
        tool_workers=args.tool_workers, tool_timeout_s=args.tool_timeout_s,
        reattach_grace_s=getattr(args, "reattach_grace", 60.0), gateway=getattr(args, "gateway", None) or "",
        sched_options={"checkpoint_every": getattr(args, "checkpoint_every", DEFAULT_CHECKPOINT_EVERY),
                       **({} if args.fifo_slice_steps is None else {"fifo_slice_steps": args.fifo_slice_steps}),
                       **({} if getattr(args, "priority_aging_s", None) is None else {"priority_aging_s": args.priority_aging_s}),
                       "lookahead": getattr(args, "lookahead", True)},
    )


def kernel_argv(args: argparse.Namespace, state_dir: Path | None = None, address: str | None = None) -> list[str]:
    """The `aiosim kernel` flags that reproduce args (used by launch and benchmarks); state dir
    and address only when given."""
    argv = [] if state_dir is None else ["--state-dir", str(state_dir)]
    argv += [] if not address else ["--address", address]
    argv += ["--model", args.model,
            "--workers", str(args.workers), "--worker-threads", str(args.worker_threads),
            "--scheduler", args.scheduler, "--quantum", str(args.quantum), "--max-batch", str(args.max_batch),
            "--preempt", args.preempt, "--log-level", getattr(args, "log_level", "INFO")]
    optional = {"--curve-allow": "curve_allow", "--max-message-bytes": "max_message_bytes", "--mem-quota": "mem_quota", "--tool-workers": "tool_workers",
                "--tool-timeout-s": "tool_timeout_s", "--on-invalid-snapshot": "on_invalid_snapshot",
                "--kv-pool-bytes": "kv_pool_bytes", "--engine": "engine", "--fifo-slice-steps": "fifo_slice_steps",
                "--priority-aging-s": "priority_aging_s",
                "--checkpoint-every": "checkpoint_every", "--reattach-grace": "reattach_grace", "--profile": "profile",
                "--gateway": "gateway"}
    for flag, attr in optional.items():
        value = getattr(args, attr, None)
        if value is not None:
            argv += [flag, str(value)]
    if getattr(args, "debug", False):
        argv.append("--debug")
    if not getattr(args, "lookahead", True):
        argv.append("--no-lookahead")
    return argv
