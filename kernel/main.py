"""`aiosim kernel`: run the kernel process until SIGINT/SIGTERM, then shut down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from kernel.config import KernelConfig
from kernel.procs import is_pid_alive

log = logging.getLogger("aiosim.kernel")


def setup_logging(level: str, log_file: Path | None) -> None:
    fmt = logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level.upper())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)


def claim_state_dir(config: KernelConfig) -> None:
    """Refuse to share a state dir with a live kernel; clear what a dead one left."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = config.pid_file
    if pid_file.exists():
        try:
            other = int(pid_file.read_text().strip())
        except ValueError:
            other = 0
        if other and other != os.getpid() and is_pid_alive(other):
            raise SystemExit(f"aiosim kernel: a kernel (pid {other}) already runs in {config.state_dir}; "
                             "stop it or pass another --state-dir")
    for sock in config.state_dir.glob("*.sock"):
        sock.unlink()
    pid_file.write_text(f"{os.getpid()}\n")


def release_state_dir(config: KernelConfig) -> None:
    for sock in config.state_dir.glob("*.sock"):
        sock.unlink(missing_ok=True)
    config.pid_file.unlink(missing_ok=True)


def check_model(model: str) -> None:
    """A model given as a path must exist (names like 'tiny' are resolved by the workers)."""
    if ("/" in model or model.startswith(".")) and not Path(model).is_dir():
        raise SystemExit(f"aiosim kernel: --model {model}: no such directory (give a local Hugging Face "
                         "model dir with config.json and tokenizer.json, or 'tiny')")


def run_kernel(config: KernelConfig) -> int:
    check_model(config.model)
    claim_state_dir(config)
    setup_logging(config.log_level, config.log_file)
    from kernel.kernel import Kernel  # after logging, so start-up is logged

    kernel = Kernel(config)
    gateway = None
    if config.gateway:
        from kernel.gateway_child import GatewayChild

        gateway = GatewayChild(config)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal gateway
        log.info("signal %d: shutting down", signum)
        if gateway is None:
            kernel.loop.stop()
        else:  # the gateway's agents deregister while the kernel still serves
            gateway.stop_then(kernel.loop)
            gateway = None

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    profiler = None
    if config.profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        kernel.run()
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(config.profile)
            log.info("profile of the kernel's main thread written to %s (python -m pstats)", config.profile)
        kernel.shutdown()
        release_state_dir(config)
        log.info("kernel stopped")
    return 0
