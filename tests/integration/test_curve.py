"""CURVE on tcp://127.0.0.1 with a live kernel: the kernel's keys in STATE/curve, plain and
wrong-key clients get nothing, an allow-list admits only listed client keys; ipc socket mode."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from agents.curve import write_client_keys
from agents.sdk import Client
from syscalls.codec import pack, unpack
from syscalls.table import PROTOCOL_VERSION
from tests.kernelproc import ROOT, KernelProc, run_cli, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(address: str, **curve: bytes) -> dict | None:
    """One proc.ping over a raw DEALER with these CURVE options; None when nothing answers."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    for opt, value in curve.items():
        setattr(sock, opt, value)
    sock.connect(address)
    try:
        sock.send(pack({"v": PROTOCOL_VERSION, "id": 1, "call": "proc.ping", "args": {"payload": "p"}}))
        return unpack(sock.recv()) if sock.poll(1500) else None
    finally:
        sock.close(linger=0)


def start(state: Path, *flags: str) -> tuple[subprocess.Popen, str, bytes]:
    """`aiosim kernel` on a free tcp port of 127.0.0.1 (no workers); returns (process, address, public key)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    state.mkdir(exist_ok=True)
    num_started = serving_lines(state)
    argv = [sys.executable, "-m", "kernel", "kernel", "--state-dir", str(state), "--address", address,
            "--workers", "0", "--debug", *flags]
    with open(state / "kernel.out", "ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: serving_lines(state) > num_started, 30, "the kernel to serve")
    return proc, address, (state / "curve" / "kernel.key").read_bytes().strip()


def serving_lines(state: Path) -> int:
    log = state / "kernel.log"
    return log.read_text().count("kernel serving on") if log.exists() else 0


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_tcp_is_curve_encrypted_and_the_allow_list_admits_only_listed_keys(tmp_path):
    allowed = write_client_keys(tmp_path / "allowed.keys")
    allow = tmp_path / "allow.txt"
    allow.write_text(f"{allowed.decode()} the test client\n")
    k, address, server_key = start(tmp_path / "s", "--curve-allow", str(allow))
    try:
        assert oct((tmp_path / "s" / "curve" / "kernel.key_secret").stat().st_mode & 0o777) == "0o600"
        public, secret = (tmp_path / "allowed.keys").read_bytes().split()
        ok = wait_for(lambda: ping(address, curve_serverkey=server_key, curve_publickey=public, curve_secretkey=secret),
                      30, "a CURVE reply")
        assert ok["result"]["payload"] == "p"
        assert ping(address) is None  # plain (NULL mechanism) client
        stranger_public, stranger_secret = zmq.curve_keypair()
        assert ping(address, curve_serverkey=server_key, curve_publickey=stranger_public,
                    curve_secretkey=stranger_secret) is None  # not on the allow-list
        wrong_server = zmq.curve_keypair()[0]
        assert ping(address, curve_serverkey=wrong_server, curve_publickey=public, curve_secretkey=secret) is None
        with Client(address, name="tcp-agent", server_key=tmp_path / "s" / "curve" / "kernel.key",
                    client_keys=tmp_path / "allowed.keys", secret_file=False) as c:
            assert c.storage_put(key="k", value=1) == {"version": 1}
        out = run_cli("call", "--address", address, "--server-key", server_key.decode(), "--client-keys",
                      str(tmp_path / "allowed.keys"), "proc.ping")
        assert out.returncode == 0, out.stderr
        assert run_cli("call", "--address", address, "proc.ping").returncode == 2  # no key: a clear error
    finally:
        stop(k)
    assert "Traceback" not in (tmp_path / "s" / "kernel.log").read_text()


def test_without_allow_list_any_client_with_the_kernel_key_connects_and_keys_persist(tmp_path):
    k, address, server_key = start(tmp_path / "s")
    try:
        public, secret = zmq.curve_keypair()
        assert wait_for(lambda: ping(address, curve_serverkey=server_key, curve_publickey=public, curve_secretkey=secret),
                        30, "a CURVE reply")["ok"]
        with pytest.raises(ValueError):
            Client(address, name="nokey")
    finally:
        stop(k)
    k, _, again = start(tmp_path / "s")
    try:
        assert again == server_key  # the key pair is kept in the state dir
    finally:
        stop(k)


def test_ipc_socket_is_owner_only(tmp_path):
    k = KernelProc(tmp_path / "s", workers=0).wait_ready(30)
    try:
        assert oct((tmp_path / "s" / "kernel.sock").stat().st_mode & 0o777) == "0o600"
    finally:
        assert k.stop() == 0
