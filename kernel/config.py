"""Kernel configuration: one dataclass, filled from the CLI (`aiosim kernel --help`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KV_POOL_BYTES = 512 << 20


@dataclass(slots=True)
class KernelConfig:
    state_dir: Path
    address: str = ""  # default: ipc://STATE/kernel.sock
    max_message_bytes: int = 1 << 20
    curve_allow: Path | None = None  # tcp:// only: file of allowed client CURVE public keys
    log_level: str = "INFO"
    debug: bool = False  # run check_integrity() whenever the kernel goes idle
    profile: Path | None = None  # cProfile the main thread's loop; stats written here at shutdown
    # workers / model
    model: str = "tiny"
    num_workers: int = 1
    worker_threads: int = 1
    on_invalid_snapshot: str = "error"  # or "recompute"
    worker_timeout_s: float = 30.0
    # scheduler
    scheduler: str = "fifo"
    quantum: int = 8
    max_batch: int = 1
    kv_pool_bytes: int = 0  # each worker's KV pool; 0 = DEFAULT_KV_POOL_BYTES
    engine: str = "native"  # or "hf"
    preempt: str = "swap"
    sched_options: dict = field(default_factory=dict)
    # services
    mem_quota_bytes: int = 1 << 20
    tool_workers: int = 2
    tool_timeout_s: float = 5.0
    tool_max_timeout_s: float = 60.0
    tool_max_output_bytes: int = 64 << 10
    # agents
    agent_reap_interval_s: float = 0.5
    reattach_grace_s: float = 60.0  # after a restart: how long a recovered request waits for its agent
    gateway: str = ""  # HOST:PORT: run `aiosim gateway` there as a child (kernel/gateway_child.py)

    def __post_init__(self) -> None:
        self.kv_pool_bytes = self.kv_pool_bytes or DEFAULT_KV_POOL_BYTES
        self.state_dir = Path(self.state_dir).resolve()
        if not self.address:
            self.address = f"ipc://{self.state_dir / 'kernel.sock'}"

    def ipc(self, name: str) -> str:
        """Address of an internal socket inside the state dir."""
        return f"ipc://{self.state_dir / name}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "kernel.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "kernel.log"


def default_state_dir() -> Path:
    return Path(os.environ.get("AIOSIM_STATE", "./state"))
