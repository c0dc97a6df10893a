"""One kernel started with `--gateway 127.0.0.1:0` (its gateway a child process) for the gateway
tests, and two identities (two API keys). Stopping the kernel must stop the gateway first, whose
agents deregister (proc.exit) before the kernel exits, leaving nothing behind."""

from __future__ import annotations

import re

import pytest

from agents.sdk import Client
from tests.kernelproc import KernelProc, is_alive, wait_for


class Gateway:
    def __init__(self, kernel: KernelProc) -> None:
        log = kernel.state_dir / "gateway.log"
        found = wait_for(lambda: log.exists() and re.search(r"serving (http://\S+) ", log.read_text()), 30, "the gateway")
        self.base_url = found.group(1)  # http://127.0.0.1:PORT/v1
        self.log = log


@pytest.fixture(scope="module")
def gw_kernel(tmp_path_factory):
    k = KernelProc(tmp_path_factory.mktemp("gateway"), "--scheduler", "rr", "--quantum", "2", "--max-batch", "2",
                   "--gateway", "127.0.0.1:0")
    try:
        yield k.wait_ready()
    finally:
        k.stop_cleanly()


@pytest.fixture(scope="module")
def operator(gw_kernel):
    with Client(gw_kernel.address, token=(gw_kernel.state_dir / "operator.token").read_text().strip()) as op:
        yield op


@pytest.fixture(scope="module")
def keys(operator) -> dict[str, str]:
    """API keys: name -> the secret `aiosim agent add NAME` prints."""
    return {name: operator.identity_add(name=name)["secret"] for name in ("gw-alice", "gw-bob")}


@pytest.fixture(scope="module")
def gateway(gw_kernel, keys):
    gw = Gateway(gw_kernel)
    yield gw
    gw_kernel.stop()
    kernel_log = (gw_kernel.state_dir / "kernel.log").read_text()
    for name in keys:
        assert re.search(rf"agent {name} \(id \d+, pid \d+\) exited", kernel_log), f"{name} did not deregister"
    pid = int(re.search(r"gateway pid (\d+)", kernel_log).group(1))
    assert not is_alive(pid) and "Traceback" not in gw.log.read_text()
