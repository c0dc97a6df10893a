"""One gateway process in front of the session's kernel, and two identities (two API keys)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from agents.sdk import Client
from tests.kernelproc import ROOT, KernelProc


class GatewayProc:
    def __init__(self, kernel: KernelProc) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kernel", "gateway", "--address", kernel.address,
                                      "--listen", "127.0.0.1:0"], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "serving http://" in line, line + self.proc.stderr.read()
        self.base_url = line.split()[3]  # http://127.0.0.1:PORT/v1

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture(scope="module")
def operator(kernel):
    with Client(kernel.address, token=(kernel.state_dir / "operator.token").read_text().strip()) as op:
        yield op


@pytest.fixture(scope="module")
def keys(operator) -> dict[str, str]:
    """API keys: name -> the secret `aiosim agent add NAME` prints."""
    return {name: operator.identity_add(name=name)["secret"] for name in ("gw-alice", "gw-bob")}


@pytest.fixture(scope="module")
def gateway(kernel, keys, operator):
    gw = GatewayProc(kernel)
    try:
        yield gw
    finally:
        code, err = gw.stop()
        assert code == 0 and "Traceback" not in err, err
        live = {a["name"] for a in operator.proc_ps()["agents"]}
        assert not live & set(keys), f"the gateway left its agents registered: {live & set(keys)}"
